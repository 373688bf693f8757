//! Runs the plan and writes the markdown report.

use crate::floor;
use crate::suite::{self, Contended, Impl};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Args {
    quick: bool,
    out: PathBuf,
    fs: Vec<(String, PathBuf)>,
    python: Option<String>,
    python_lf102: Option<String>,
    python_self: Option<String>,
    self_missing: String,
    peers: Option<String>,
    cli: Option<String>,
    cli_missing: String,
    cli_script: Option<String>,
    command: String,
    note: String,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        out: PathBuf::from("bench/RESULTS.md"),
        fs: Vec::new(),
        python: None,
        python_lf102: None,
        python_self: None,
        self_missing: "not installed".to_owned(),
        peers: None,
        cli: None,
        cli_missing: "not built".to_owned(),
        cli_script: None,
        command: "lockfolder-bench suite".to_owned(),
        note: String::new(),
    };
    let mut it = args.iter();
    while let Some(k) = it.next() {
        if k == "--quick" {
            a.quick = true;
            continue;
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{k} needs a value"))?
            .clone();
        match k.as_str() {
            "--out" => a.out = PathBuf::from(v),
            "--fs" => {
                let (n, d) = v.split_once('=').ok_or("--fs takes NAME=DIR")?;
                a.fs.push((n.to_owned(), PathBuf::from(d)));
            }
            "--python" => a.python = Some(v),
            "--python-lf102" => a.python_lf102 = Some(v),
            "--python-self" => a.python_self = Some(v),
            "--self-missing" => a.self_missing = v,
            "--peers" => a.peers = Some(v),
            "--cli" => a.cli = Some(v),
            "--cli-missing" => a.cli_missing = v,
            "--cli-script" => a.cli_script = Some(v),
            "--command" => a.command = v,
            "--note" => a.note = v,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if a.fs.is_empty() {
        return Err("give at least one --fs NAME=DIR".to_owned());
    }
    Ok(a)
}

/// How much of everything a run measures.
struct Plan {
    reps: usize,
    hot_secs: f64,
    /// A hot-loop worker waiting this long for one acquisition gives up.
    stall_secs: f64,
    rust_ns: Vec<usize>,
    py_ns: Vec<usize>,
    floor_iters: u64,
    /// Alternating blocks of floor and lockfolder in one process.
    paired_rounds: usize,
    rust_iters: u64,
    py_iters: u64,
    rec_reps: usize,
    give_up: Duration,
    cpu_secs: f64,
    cli_reps: usize,
    /// Scaling (issue 15), on the first filesystem: ignored entries in the
    /// folder, and waiters (hot-loop processes beyond the holder).
    scale_others: Vec<usize>,
    scale_waiters: Vec<usize>,
    scale_reps: usize,
    scale_secs: f64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                reps: 1,
                hot_secs: 1.0,
                stall_secs: 5.0,
                rust_ns: vec![4],
                py_ns: vec![],
                floor_iters: 2000,
                paired_rounds: 2,
                rust_iters: 2000,
                py_iters: 0,
                rec_reps: 1,
                give_up: Duration::from_secs(5),
                cpu_secs: 1.0,
                cli_reps: 5,
                scale_others: vec![0, 10_000],
                scale_waiters: vec![1, 16],
                scale_reps: 1,
                scale_secs: 0.5,
            }
        } else {
            Plan {
                reps: 3,
                hot_secs: 1.5,
                stall_secs: 5.0,
                rust_ns: vec![2, 4, 8],
                py_ns: vec![4, 8],
                floor_iters: 20000,
                paired_rounds: 10,
                rust_iters: 20000,
                py_iters: 2000,
                rec_reps: 5,
                give_up: Duration::from_secs(5),
                cpu_secs: 5.0,
                cli_reps: 40,
                scale_others: vec![0, 100, 10_000, 100_000],
                scale_waiters: vec![1, 4, 16, 64],
                scale_reps: 3,
                scale_secs: 1.5,
            }
        }
    }
}

fn median_f(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn fmt_opt_ns(ns: Option<f64>) -> String {
    ns.map(fmt_ns).unwrap_or_else(|| "–".to_owned())
}

fn ratio(x: Option<f64>) -> String {
    match x {
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => "–".to_owned(),
    }
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Medians over the repeats of one contended cell.
struct HotRow {
    rate: Option<f64>,
    fairness: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    exclusive: bool,
    stalled: u64,
    runs: Vec<Contended>,
    error: Option<String>,
}

fn hot_row(runs: Vec<Result<Contended, String>>) -> HotRow {
    let error = runs.iter().find_map(|r| r.as_ref().err().cloned());
    let ok: Vec<Contended> = runs.into_iter().filter_map(Result::ok).collect();
    HotRow {
        rate: median_f(ok.iter().map(Contended::rate).collect()),
        fairness: median_f(ok.iter().map(Contended::fairness).collect()),
        p50: median_f(
            ok.iter()
                .filter_map(|c| c.p50_ns.map(|x| x as f64))
                .collect(),
        ),
        p99: median_f(
            ok.iter()
                .filter_map(|c| c.p99_ns.map(|x| x as f64))
                .collect(),
        ),
        exclusive: ok.iter().all(Contended::exclusive),
        stalled: ok.iter().map(|c| c.stalled).sum(),
        runs: ok,
        error,
    }
}

struct RecRow {
    median: Option<f64>,
    /// Some repeats never recovered within the give-up time.
    never: usize,
    times: Vec<f64>,
    error: Option<String>,
}

/// Everything measured on one filesystem.
struct FsResults {
    name: String,
    dir: PathBuf,
    fstype: String,
    raw_floor: Option<f64>,
    flock_floor: Option<f64>,
    /// Medians of (floor, lockfolder) measured in alternating blocks.
    paired: Option<(f64, f64)>,
    floor_err: Option<String>,
    uncontended: Vec<(Impl, Result<f64, String>)>,
    hot: Vec<(Impl, usize, HotRow)>,
    recovery: Vec<(Impl, RecRow)>,
    cpu: Vec<(Impl, Result<f64, String>)>,
    /// Scaling with ignored entries in the folder (first filesystem only).
    scale_fill: Vec<FillRow>,
    /// Scaling with waiters: lock, waiters, the hot loop of waiters + 1.
    scale_wait: Vec<(Impl, usize, HotRow)>,
}

/// One row of the "as the folder fills" table.
struct FillRow {
    others: usize,
    floor: Option<f64>,
    floor_err: Option<String>,
    uncontended: Result<f64, String>,
    /// lockfolder, two processes in the hot loop: every handoff.
    handoff: HotRow,
}

/// Iterations of an uncontended cycle among `others` entries: fewer as every
/// check lists more, so each cell takes about as long.
/// The "counter = Σ acquisitions" cell of a scaling row, noting failures
/// (every scaling row is a Rust lock).
fn excl_cell(h: &HotRow, mutex_failed: &mut bool, stalled: &mut bool, broken: &mut bool) -> String {
    if h.runs.is_empty() {
        *broken = true;
        return format!(
            "error: {}",
            h.error.clone().unwrap_or_default().replace('|', "/")
        );
    }
    let mut s = if h.exclusive {
        format!("yes ({} runs)", h.runs.len())
    } else {
        *mutex_failed = true;
        "**NO**".to_owned()
    };
    if h.stalled > 0 {
        *stalled = true;
        s.push_str(&format!("; **stalled**: {} worker(s)", h.stalled));
    }
    s
}

/// A two-panel picture of the scaling table (log-log): the uncontended
/// cycle (lockfolder and the raw floor) against other entries, and the
/// handoff p50 (lockfolder and flock) against waiters. `None` if there is
/// too little to draw.
fn scaling_svg(t: &FsResults) -> Option<String> {
    type Series = (&'static str, &'static str, Vec<(f64, f64)>);
    let fill_lf: Vec<(f64, f64)> = t
        .scale_fill
        .iter()
        .filter_map(|f| Some((f.others as f64, *f.uncontended.as_ref().ok()?)))
        .collect();
    let fill_floor: Vec<(f64, f64)> = t
        .scale_fill
        .iter()
        .filter_map(|f| Some((f.others as f64, f.floor?)))
        .collect();
    let wait = |k: &str| -> Vec<(f64, f64)> {
        t.scale_wait
            .iter()
            .filter(|(i, _, _)| i.key == k)
            .filter_map(|(_, n, r)| Some((*n as f64, r.p50?)))
            .collect()
    };
    let panels: [(&str, &str, Vec<Series>); 2] = [
        (
            "uncontended cycle vs other entries in the folder",
            "other entries (0 drawn at 1)",
            vec![
                ("lockfolder", "#c0392b", fill_lf),
                ("raw floor", "#7f8c8d", fill_floor),
            ],
        ),
        (
            "handoff p50 vs waiters",
            "waiters",
            vec![
                ("lockfolder", "#c0392b", wait("lockfolder")),
                ("flock", "#2471a3", wait("flock")),
            ],
        ),
    ];
    if panels
        .iter()
        .all(|(_, _, s)| s.iter().all(|x| x.2.len() < 2))
    {
        return None;
    }
    let (pw, ph, m) = (420.0, 300.0, 60.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        2.0 * pw,
        ph
    );
    for (k, (title, xlabel, series)) in panels.iter().enumerate() {
        let ox = k as f64 * pw;
        let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
        if pts.is_empty() {
            continue;
        }
        let lx = |x: f64| x.max(1.0).log10();
        let ly = |y: f64| y.max(1.0).log10();
        let (x0, x1) = (0.0f64, pts.iter().map(|p| lx(p.0)).fold(1.0, f64::max));
        let y0 = pts
            .iter()
            .map(|p| ly(p.1))
            .fold(f64::INFINITY, f64::min)
            .floor();
        let y1 = pts
            .iter()
            .map(|p| ly(p.1))
            .fold(0.0, f64::max)
            .ceil()
            .max(y0 + 1.0);
        let sx = |x: f64| ox + m + (lx(x) - x0) / (x1 - x0) * (pw - 1.5 * m);
        let sy = |y: f64| ph - m + 10.0 - (ly(y) - y0) / (y1 - y0) * (ph - 1.5 * m);
        out += &format!(
            "<text x=\"{}\" y=\"18\" font-weight=\"bold\">{title}</text>\n",
            ox + m
        );
        out += &format!(
            "<text x=\"{}\" y=\"{}\">{xlabel} (log)</text>\n<text x=\"{}\" y=\"{}\" transform=\"rotate(-90 {} {})\">time (log)</text>\n",
            ox + m,
            ph - 8.0,
            ox + 14.0,
            ph / 2.0 + 30.0,
            ox + 14.0,
            ph / 2.0 + 30.0
        );
        let mut e = y0;
        while e <= y1 {
            let y = sy(10f64.powf(e));
            out += &format!(
                "<line x1=\"{}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                ox + m,
                ox + pw - 0.5 * m,
                ox + m - 4.0,
                y + 4.0,
                fmt_ns(10f64.powf(e))
            );
            e += 1.0;
        }
        for &(x, _) in &series.iter().flat_map(|s| s.2.clone()).collect::<Vec<_>>() {
            out += &format!(
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{x}</text>\n",
                sx(x),
                ph - m + 24.0
            );
        }
        for (j, (name, color, v)) in series.iter().enumerate() {
            let path: Vec<String> = v
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            out += &format!(
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
                path.join(" ")
            );
            for (x, y) in v {
                out += &format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{name}: {}</title></circle>\n",
                    sx(*x),
                    sy(*y),
                    fmt_ns(*y)
                );
            }
            out += &format!(
                "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{name}</text>\n",
                ox + m + 10.0,
                40.0 + 14.0 * j as f64
            );
        }
    }
    out += "</svg>\n";
    Some(out)
}

fn iters_among(base: u64, others: usize) -> u64 {
    ((base as f64 * 100.0 / (100.0 + others as f64)) as u64).max(10)
}

fn hot<'a>(r: &'a FsResults, key: &str, n: usize) -> Option<&'a HotRow> {
    r.hot
        .iter()
        .find(|(i, m, _)| i.key == key && *m == n)
        .map(|(_, _, h)| h)
}

fn log(msg: &str) {
    eprintln!(
        "[bench {:>7.1}s] {msg}",
        crate::worker::mono_ns() as f64 / 1e9 % 100000.0
    );
}

fn measure_fs(
    name: &str,
    dir: &Path,
    plan: &Plan,
    rust: &[Impl],
    py: &[Impl],
    extra: &[Impl],
    scaling: bool,
) -> Result<FsResults, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let fstype = format!(
        "{} ({})",
        sh(&format!("stat -f -c %T '{}'", dir.display())),
        sh(&format!(
            "findmnt -n -o FSTYPE -T '{}' | head -n 1",
            dir.display()
        ))
    );
    let mut r = FsResults {
        name: name.to_owned(),
        dir: dir.to_path_buf(),
        fstype,
        raw_floor: None,
        flock_floor: None,
        paired: None,
        floor_err: None,
        uncontended: Vec::new(),
        hot: Vec::new(),
        recovery: Vec::new(),
        cpu: Vec::new(),
        scale_fill: Vec::new(),
        scale_wait: Vec::new(),
    };
    log(&format!("{name}: floors"));
    let mut raws = Vec::new();
    let mut flocks = Vec::new();
    for rep in 0..plan.reps {
        let c = suite::cell(dir, &format!("floor-{rep}"))?;
        let fl = c.join("floor.d");
        std::fs::create_dir_all(&fl).map_err(|e| e.to_string())?;
        match floor::raw(&fl, plan.floor_iters) {
            Ok(x) => raws.push(x),
            Err(e) => r.floor_err = Some(e),
        }
        match floor::flock(&c.join("floor.lock"), plan.floor_iters) {
            Ok(x) => flocks.push(x),
            Err(e) => r.floor_err = Some(e),
        }
        let _ = std::fs::remove_dir_all(&c);
    }
    r.raw_floor = median_f(raws);
    let c = suite::cell(dir, "paired")?;
    match floor::paired(&c, plan.paired_rounds, plan.floor_iters / 4) {
        Ok((f, l)) => {
            if let (Some(f), Some(l)) = (median_f(f), median_f(l)) {
                r.paired = Some((f, l));
            }
        }
        Err(e) => r.floor_err = Some(e),
    }
    let _ = std::fs::remove_dir_all(&c);
    r.flock_floor = median_f(flocks);

    let all: Vec<Impl> = rust.iter().chain(py).cloned().collect();
    for imp in extra {
        log(&format!("{name}: contended {} N=8", imp.name));
        let runs = (0..plan.reps)
            .map(|rep| suite::contended(imp, dir, 8, plan.hot_secs, plan.stall_secs, rep, 0))
            .collect();
        r.hot.push((imp.clone(), 8, hot_row(runs)));
    }
    for imp in &all {
        log(&format!("{name}: uncontended {}", imp.name));
        let iters = if imp.python {
            plan.py_iters
        } else {
            plan.rust_iters
        };
        let runs: Vec<Result<f64, String>> = (0..plan.reps)
            .map(|rep| suite::uncontended(imp, dir, iters, rep, 0))
            .collect();
        let err = runs.iter().find_map(|x| x.as_ref().err().cloned());
        let ok: Vec<f64> = runs.into_iter().filter_map(Result::ok).collect();
        let v = match (median_f(ok), err) {
            (Some(m), _) => Ok(m),
            (None, Some(e)) => Err(e),
            (None, None) => Err("no result".to_owned()),
        };
        r.uncontended.push((imp.clone(), v));
    }
    for imp in &all {
        let ns = if imp.python {
            &plan.py_ns
        } else {
            &plan.rust_ns
        };
        for &n in ns {
            log(&format!("{name}: contended {} N={n}", imp.name));
            let runs = (0..plan.reps)
                .map(|rep| suite::contended(imp, dir, n, plan.hot_secs, plan.stall_secs, rep, 0))
                .collect();
            let row = hot_row(runs);
            if !row.exclusive {
                log(&format!(
                    "MUTUAL EXCLUSION FAILED: {} N={n} on {name}",
                    imp.name
                ));
            }
            if let Some(e) = &row.error {
                log(&format!("{} N={n}: {e}", imp.name));
            }
            r.hot.push((imp.clone(), n, row));
        }
    }
    for imp in &all {
        log(&format!("{name}: recovery {}", imp.name));
        let mut row = RecRow {
            median: None,
            never: 0,
            times: Vec::new(),
            error: None,
        };
        for rep in 0..plan.rec_reps {
            match suite::recovery(imp, dir, plan.give_up, rep) {
                Ok(Some(ns)) => row.times.push(ns as f64),
                Ok(None) => row.never += 1,
                Err(e) => row.error = Some(e),
            }
            // A lock that never recovers will not start to: spare the time.
            if row.never >= 2 {
                break;
            }
        }
        row.median = if row.never * 2 >= row.times.len() + row.never && row.never > 0 {
            None
        } else {
            median_f(row.times.clone())
        };
        r.recovery.push((imp.clone(), row));
    }
    log(&format!(
        "{name}: waiter CPU ({} s, all locks at once)",
        plan.cpu_secs
    ));
    let cpu = suite::waiter_cpu(&all, dir, plan.cpu_secs);
    r.cpu = all.iter().cloned().zip(cpu).collect();
    if scaling {
        measure_scaling(&mut r, dir, plan, rust)?;
    }
    Ok(r)
}

/// Issue 15's scaling table: one uncontended cycle (beside the raw floor in
/// the same folder) and one handoff as the folder holds more ignored entries;
/// the hot loop as waiters grow, lockfolder beside flock.
fn measure_scaling(
    r: &mut FsResults,
    dir: &Path,
    plan: &Plan,
    rust: &[Impl],
) -> Result<(), String> {
    let name = r.name.clone();
    let lf = rust
        .iter()
        .find(|i| i.key == "lockfolder")
        .ok_or("no lockfolder row")?;
    for &others in &plan.scale_others {
        log(&format!("{name}: scaling, {others} other entries"));
        let iters = iters_among(plan.rust_iters, others);
        let mut floors = Vec::new();
        let mut floor_err = None;
        let mut lfs = Vec::new();
        let mut lf_err = None;
        for rep in 0..plan.scale_reps {
            let c = suite::cell(dir, &format!("scale-floor-{others}-{rep}"))?;
            let fl = c.join("floor.d");
            suite::fill_dir(&fl, others)?;
            match floor::raw_among(&fl, iters, others) {
                Ok(x) => floors.push(x),
                Err(e) => floor_err = Some(e),
            }
            let _ = std::fs::remove_dir_all(&c);
            match suite::uncontended(lf, dir, iters, rep, others) {
                Ok(x) => lfs.push(x),
                Err(e) => lf_err = Some(e),
            }
        }
        let runs = (0..plan.scale_reps)
            .map(|rep| suite::contended(lf, dir, 2, plan.scale_secs, plan.stall_secs, rep, others))
            .collect();
        let handoff = hot_row(runs);
        if !handoff.exclusive {
            log(&format!(
                "MUTUAL EXCLUSION FAILED: lockfolder N=2 among {others} entries on {name}"
            ));
        }
        r.scale_fill.push(FillRow {
            others,
            floor: median_f(floors),
            floor_err,
            uncontended: median_f(lfs).ok_or_else(|| lf_err.unwrap_or("no result".into())),
            handoff,
        });
    }
    for &waiters in &plan.scale_waiters {
        for imp in rust {
            log(&format!(
                "{name}: scaling, {} with {waiters} waiters",
                imp.name
            ));
            let runs = (0..plan.scale_reps)
                .map(|rep| {
                    suite::contended(
                        imp,
                        dir,
                        waiters + 1,
                        plan.scale_secs,
                        plan.stall_secs,
                        rep,
                        0,
                    )
                })
                .collect();
            let row = hot_row(runs);
            if !row.exclusive {
                log(&format!(
                    "MUTUAL EXCLUSION FAILED: {} N={} on {name}",
                    imp.name,
                    waiters + 1
                ));
            }
            r.scale_wait.push((imp.clone(), waiters, row));
        }
    }
    Ok(())
}

fn python_versions(py: &str, peers: &str) -> String {
    let out = Command::new(py).arg(peers).arg("versions").output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => "unknown".to_owned(),
    }
}

/// The `suite` subcommand. Returns the exit code: 1 if mutual exclusion
/// failed for lockfolder or flock anywhere (or, in quick mode, a Rust cell
/// could not be measured at all).
pub fn suite(args: &[String]) -> Result<i32, String> {
    let a = parse(args)?;
    let plan = Plan::new(a.quick);
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .display()
        .to_string();
    let rust_impl = |name: &str, key: &str, folder: bool| Impl {
        name: name.to_owned(),
        key: key.to_owned(),
        cmd: vec![exe.clone()],
        folder,
        python: false,
    };
    let rust = vec![
        rust_impl("lockfolder (Rust)", "lockfolder", true),
        rust_impl("flock (Rust)", "flock", false),
    ];
    // Issue 7: 8 readers (shared) and 8 contenders of a 4-slot semaphore,
    // beside 8 writers (the exclusive lockfolder row at N = 8).
    let extra = if a.quick {
        Vec::new()
    } else {
        vec![
            rust_impl(
                "lockfolder (Rust), shared: 8 readers",
                "lockfolder-shared",
                true,
            ),
            rust_impl("lockfolder (Rust), slots = 4", "lockfolder-slots4", true),
        ]
    };
    let mut py = Vec::new();
    let mut missing: Vec<(String, String)> = Vec::new();
    if !a.quick {
        let peers = a
            .peers
            .clone()
            .ok_or("--peers is needed for the full run")?;
        let py_impl = |python: &str, name: &str, key: &str, folder: bool| Impl {
            name: name.to_owned(),
            key: key.to_owned(),
            cmd: vec![python.to_owned(), peers.clone()],
            folder,
            python: true,
        };
        match &a.python_self {
            Some(p) => py.push(py_impl(p, "lockfolder (Python face)", "self", true)),
            None => missing.push((
                "lockfolder (Python face)".to_owned(),
                a.self_missing.clone(),
            )),
        }
        match &a.python {
            Some(p) => {
                py.push(py_impl(p, "filelock.FileLock", "filelock", false));
                py.push(py_impl(p, "filelock.SoftFileLock", "softfilelock", false));
                py.push(py_impl(p, "fasteners.InterProcessLock", "fasteners", false));
                py.push(py_impl(p, "portalocker.Lock", "portalocker", false));
                py.push(py_impl(p, "flufl.lock.Lock", "flufl", false));
            }
            None => missing.push(("Python peers".to_owned(), "no --python given".to_owned())),
        }
        match &a.python_lf102 {
            Some(p) => py.push(py_impl(p, "lockfolder 1.0.2 (PyPI)", "lf102", true)),
            None => missing.push((
                "lockfolder 1.0.2".to_owned(),
                "no --python-lf102 given".to_owned(),
            )),
        }
    }

    let started = sh("date -u '+%Y-%m-%d %H:%M:%S UTC'");
    let load_start = sh("cut -d' ' -f1-3 /proc/loadavg");
    let t0 = std::time::Instant::now();
    let mut results = Vec::new();
    for (k, (name, dir)) in a.fs.iter().enumerate() {
        results.push(measure_fs(name, dir, &plan, &rust, &py, &extra, k == 0)?);
    }

    // lockfolder run vs flock(1).
    let mut cli = None;
    if let Some(bin) = &a.cli {
        log("CLI: lockfolder run vs flock");
        let (fsname, dir) = &a.fs[0];
        let c = suite::cell(dir, "cli")?;
        let lf: Vec<String> = vec![
            bin.clone(),
            "run".into(),
            c.join("cli.d").display().to_string(),
            "--".into(),
            "true".into(),
        ];
        let fl: Vec<String> = vec![
            "flock".into(),
            c.join("cli.lock").display().to_string(),
            "true".into(),
        ];
        let mut lt = Vec::new();
        let mut ft = Vec::new();
        let mut err = None;
        for _ in 0..plan.cli_reps {
            match suite::wall(&lf, 1) {
                Ok(v) => lt.extend(v.into_iter().map(|x| x as f64)),
                Err(e) => err = Some(e),
            }
            match suite::wall(&fl, 1) {
                Ok(v) => ft.extend(v.into_iter().map(|x| x as f64)),
                Err(e) => err = Some(e),
            }
            if err.is_some() {
                break;
            }
        }
        let _ = std::fs::remove_dir_all(&c);
        cli = Some((fsname.clone(), median_f(lt), median_f(ft), err));
    }
    let cli_script = a.cli_script.as_ref().map(|s| {
        log(&format!("CLI: {s}"));
        let out = Command::new("bash")
            .arg(s)
            .env("LOCKFOLDER", a.cli.clone().unwrap_or_default())
            .output();
        match out {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                if o.status.success() {
                    String::new()
                } else {
                    format!(
                        "(exit {:?}) {}",
                        o.status.code(),
                        String::from_utf8_lossy(&o.stderr)
                    )
                }
            ),
            Err(e) => format!("could not run: {e}"),
        }
    });
    let elapsed = t0.elapsed();
    let load_end = sh("cut -d' ' -f1-3 /proc/loadavg");

    // ------------------------------------------------------------ report
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# lockfolder benchmark results\n");
    if a.quick {
        let _ = writeln!(
            w,
            "**Quick smoke run** (harness check, not a measurement).\n"
        );
    }
    let _ = writeln!(
        w,
        "- Date: {started}; the run took {:.0} s.",
        elapsed.as_secs_f64()
    );
    let _ = writeln!(w, "- Command: `{}`", a.command);
    let _ = writeln!(
        w,
        "- Machine: {} CPUs ({}), Linux {}; load average {load_start} at the start, {load_end} at the end.",
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'"),
        sh("uname -r"),
    );
    let rev = sh("git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown");
    let dirty = if rev.ends_with("-dirty") {
        " (the work tree had uncommitted changes, which were measured too)"
    } else {
        ""
    };
    let _ = writeln!(w, "- Code measured: commit {rev}{dirty}.");
    let _ = writeln!(w, "- Toolchain: {}.", sh("rustc --version"));
    if let Some(p) = &a.python {
        let _ = writeln!(
            w,
            "- Python peers: {}.",
            python_versions(p, a.peers.as_deref().unwrap_or(""))
        );
    }
    if let Some(p) = &a.python_lf102 {
        let _ = writeln!(
            w,
            "- lockfolder 1.0.2 venv: {}.",
            python_versions(p, a.peers.as_deref().unwrap_or(""))
        );
    }
    if !a.note.is_empty() {
        let _ = writeln!(w, "- Note: {}", a.note);
    }
    let _ = writeln!(
        w,
        "- Plan: medians over {} repeats; contended runs last {} s each; recovery: {} repeats, giving up after {} s; waiter CPU over {} s.",
        plan.reps,
        plan.hot_secs,
        plan.rec_reps,
        plan.give_up.as_secs(),
        plan.cpu_secs
    );
    let _ = writeln!(
        w,
        "\n| cell | folder | filesystem (`stat -f -c %T`) |\n|---|---|---|"
    );
    // Folders inside the checkout are shown relative to it: the report is
    // committed, and this machine's paths mean nothing elsewhere.
    let cwd = std::env::current_dir().unwrap_or_default();
    for r in &results {
        let shown = r.dir.strip_prefix(&cwd).unwrap_or(&r.dir);
        let _ = writeln!(w, "| {} | `{}` | {} |", r.name, shown.display(), r.fstype);
    }
    for (n, why) in &missing {
        let _ = writeln!(w, "\n{n}: **not available** ({why}).");
    }
    let _ = writeln!(w);

    // Targets on the first filesystem (tmpfs by convention).
    let mut mutex_failed = false;
    let mut stalls: Vec<String> = Vec::new();
    let mut lf_stalled = false;
    let mut rust_broken = false;
    let t = &results[0];
    let lf = |r: &FsResults| {
        r.uncontended
            .iter()
            .find(|(i, _)| i.key == "lockfolder")
            .and_then(|(_, v)| v.as_ref().ok().copied())
    };
    let _ = writeln!(
        w,
        "## Targets of issue 3 (measured on `{}`, reported, not asserted)\n",
        t.name
    );
    let _ = writeln!(w, "| target | measured | met |\n|---|---|---|");
    let yes = |b: bool| if b { "yes" } else { "**no**" };
    if let Some((f, l)) = t.paired {
        let x = f / l;
        let _ = writeln!(
            w,
            "| uncontended Rust cycle ≥ 0.8× the raw-syscall floor's throughput (alternating blocks in one process) | {x:.2}× ({} vs {}) | {} |",
            fmt_ns(l),
            fmt_ns(f),
            yes(x >= 0.8)
        );
    }
    if let (Some(l), Some(f)) = (lf(t), t.raw_floor) {
        let x = f / l;
        let _ = writeln!(
            w,
            "| the same, lockfolder in a worker process and the floor in the orchestrator, one after the other | {x:.2}× ({} vs {}) | {} |",
            fmt_ns(l),
            fmt_ns(f),
            yes(x >= 0.8)
        );
    }
    if let Some(h) = hot(t, "lockfolder", 4) {
        if let (Some(p50), Some(p99)) = (h.p50, h.p99) {
            let _ = writeln!(
                w,
                "| handoff p50 ≤ 100 µs at N = 4 | {} | {} |",
                fmt_ns(p50),
                yes(p50 <= 100e3)
            );
            let _ = writeln!(
                w,
                "| handoff p99 ≤ 2 ms at N = 4 | {} | {} |",
                fmt_ns(p99),
                yes(p99 <= 2e6)
            );
        }
    }
    if let Some(h) = hot(t, "lockfolder", 8) {
        if let Some(fair) = h.fairness {
            let _ = writeln!(
                w,
                "| fairness ≥ 0.8 at N = 8 | {fair:.2} | {} |",
                yes(fair >= 0.8)
            );
        }
    }
    if let Some((_, rec)) = t.recovery.iter().find(|(i, _)| i.key == "lockfolder") {
        let m = rec.median;
        let _ = writeln!(
            w,
            "| recovery after SIGKILL: median ≤ 2 ms | {} | {} |",
            m.map(fmt_ns).unwrap_or("never".into()),
            yes(m.is_some_and(|m| m <= 2e6))
        );
    }
    if let Some((_, Ok(c))) = t.cpu.iter().find(|(i, _)| i.key == "lockfolder") {
        let _ = writeln!(
            w,
            "| waiter blocked {} s uses < 1 % CPU | {c:.3} % | {} |",
            plan.cpu_secs,
            yes(*c < 1.0)
        );
    }
    let mut lf_cells = 0;
    let mut lf_fail = 0;
    for r in &results {
        for (i, _, h) in &r.hot {
            if i.folder && i.key != "lf102" {
                lf_cells += 1;
                if !h.exclusive {
                    lf_fail += 1;
                }
            }
        }
    }
    let _ = writeln!(w, "| zero mutual-exclusion failures in every cell (lockfolder, all filesystems) | {lf_fail} failing of {lf_cells} cells | {} |", yes(lf_fail == 0));
    let lf_stalls: u64 = results
        .iter()
        .flat_map(|r| r.hot.iter())
        .filter(|(i, _, _)| i.folder && i.key != "lf102")
        .map(|(_, _, h)| h.stalled)
        .sum();
    let _ = writeln!(
        w,
        "| no stalls: no lockfolder waiter waits {} s for a lock held for microseconds at a time | {lf_stalls} stalled workers | {} |",
        plan.stall_secs,
        yes(lf_stalls == 0)
    );
    let _ = writeln!(w);

    // Issue 5: the Python face's uncontended cycle against the peers.
    let unc = |key: &str| {
        t.uncontended
            .iter()
            .find(|(i, _)| i.key == key)
            .and_then(|(_, v)| v.as_ref().ok().copied())
    };
    if let Some(me) = unc("self") {
        let _ = writeln!(
            w,
            "## Targets of issue 5: the Python face, uncontended (on `{}`)\n",
            t.name
        );
        let _ = writeln!(w, "| target | measured | met |\n|---|---|---|");
        let file_peers = [
            ("softfilelock", "filelock.SoftFileLock"),
            ("flufl", "flufl.lock"),
            ("lf102", "lockfolder 1.0.2"),
        ];
        let mut all = true;
        let mut parts = Vec::new();
        for (k, n) in file_peers {
            if let Some(p) = unc(k) {
                all &= p > me;
                parts.push(format!("{n} {:.2}×", p / me));
            }
        }
        let _ = writeln!(
            w,
            "| faster than every peer with a file protocol (peer time ÷ ours) | {} | {} |",
            parts.join(", "),
            yes(all)
        );
        if let Some(soft) = unc("softfilelock") {
            let _ = writeln!(
                w,
                "| ≥ 3× filelock.SoftFileLock | {:.2}× | {} |",
                soft / me,
                yes(soft / me >= 3.0)
            );
        }
        let mut os = Vec::new();
        for (k, n) in [
            ("filelock", "filelock.FileLock"),
            ("fasteners", "fasteners"),
            ("portalocker", "portalocker"),
        ] {
            if let Some(p) = unc(k) {
                os.push(format!("{n} {:.2}×", p / me));
            }
        }
        let _ = writeln!(
            w,
            "| (for information) peers on OS locks, flock/fcntl (peer time ÷ ours) | {} | – |",
            os.join(", ")
        );
        let _ = writeln!(w);
    }

    for r in &results {
        let _ = writeln!(w, "## {} (`{}`)\n", r.name, r.fstype);
        let _ = writeln!(w, "### Uncontended acquire + release cycle\n");
        let lf_ns = lf(r);
        let self_ns = r
            .uncontended
            .iter()
            .find(|(i, _)| i.key == "self")
            .and_then(|(_, v)| v.as_ref().ok().copied());
        let _ = writeln!(w, "| lock | per cycle (median) | cycles/s | throughput vs raw floor | lockfolder (Rust) is × faster | lockfolder (Python face) is × faster |\n|---|---|---|---|---|---|");
        let floor_row = |w: &mut String, name: &str, ns: Option<f64>| {
            if let Some(ns) = ns {
                let _ = writeln!(
                    w,
                    "| {name} | {} | {:.0} | {} | {} | {} |",
                    fmt_ns(ns),
                    1e9 / ns,
                    ratio(r.raw_floor.map(|f| f / ns)),
                    ratio(lf_ns.map(|l| ns / l)),
                    ratio(self_ns.map(|s| ns / s))
                );
            }
        };
        floor_row(w, "floor: raw check-bid-check syscalls (Rust)", r.raw_floor);
        floor_row(w, "floor: flock + unlock (Rust)", r.flock_floor);
        if let Some((f, l)) = r.paired {
            let _ = writeln!(
                w,
                "| paired: raw floor, alternating with the next row in one process | {} | {:.0} | 1.00× | – | – |",
                fmt_ns(f),
                1e9 / f
            );
            let _ = writeln!(
                w,
                "| paired: lockfolder (Rust) try_lock + release, same process | {} | {:.0} | {} | – | – |",
                fmt_ns(l),
                1e9 / l,
                ratio(Some(f / l))
            );
        }
        if let Some(e) = &r.floor_err {
            let _ = writeln!(w, "| floor | error: {e} | | | | |");
            rust_broken = true;
        }
        for (i, v) in &r.uncontended {
            match v {
                Ok(ns) => floor_row(w, &i.name, Some(*ns)),
                Err(e) => {
                    if !i.python {
                        rust_broken = true;
                    }
                    let _ = writeln!(w, "| {} | error: {} | | | | |", i.name, e.replace('|', "/"));
                }
            }
        }
        let _ = writeln!(w, "\n### Contended: N processes in a hot loop (acquire → read-modify-write a counter file → release)\n");
        let _ = writeln!(w, "In the last two columns Rust rows are compared with lockfolder (Rust) and Python rows with lockfolder's Python face, at the same N.\n");
        let _ = writeln!(w, "| lock | N | acquisitions/s | fairness (min/max) | handoff p50 | handoff p99 | counter = Σ acquisitions | lockfolder ÷ this, throughput | this ÷ lockfolder, handoff p99 |\n|---|---|---|---|---|---|---|---|---|");
        for (i, n, h) in &r.hot {
            if let Some(e) = &h.error {
                if h.runs.is_empty() {
                    if !i.python {
                        rust_broken = true;
                    }
                    let _ = writeln!(
                        w,
                        "| {} | {n} | error: {} | | | | | | |",
                        i.name,
                        e.replace('|', "/")
                    );
                    continue;
                }
            }
            // Rust rows against lockfolder (Rust); Python rows against the
            // Python face when it was measured.
            let base = if i.python {
                hot(r, "self", *n).or_else(|| hot(r, "lockfolder", *n))
            } else {
                hot(r, "lockfolder", *n)
            };
            let excl = if !crate::locks::is_exclusive(&i.key) {
                "n/a: several holders at once by design (read-only loop)".to_owned()
            } else if h.exclusive {
                format!("yes ({} runs)", h.runs.len())
            } else {
                if !i.python {
                    mutex_failed = true;
                }
                let bad: Vec<String> = h
                    .runs
                    .iter()
                    .filter(|c| !c.exclusive())
                    .map(|c| format!("{} ≠ {}", c.counter, c.total))
                    .collect();
                format!("**NO**: {}", bad.join(", "))
            };
            let mut note = h
                .error
                .as_ref()
                .map(|e| format!(" (and an error: {})", e.replace('|', "/")))
                .unwrap_or_default();
            let mut raised = std::collections::BTreeMap::new();
            for c in &h.runs {
                for (k, n) in &c.exceptions {
                    *raised.entry(k.clone()).or_insert(0u64) += n;
                }
            }
            if !raised.is_empty() {
                let kinds: Vec<String> = raised.iter().map(|(k, n)| format!("{n}× {k}")).collect();
                let _ = write!(
                    note,
                    "; the lock raised {} over {} runs (caught; counted as failed attempts)",
                    kinds.join(", "),
                    h.runs.len()
                );
            }
            if h.stalled > 0 {
                if !i.python || i.key == "self" {
                    lf_stalled = true;
                }
                stalls.push(format!("{} N={n} on {}", i.name, r.name));
                let _ = write!(
                    note,
                    "; **stalled**: {} worker(s) waited {} s for one acquisition and gave up",
                    h.stalled, plan.stall_secs
                );
            }
            let _ = writeln!(
                w,
                "| {} | {n} | {:.0} | {} | {} | {} | {excl}{note} | {} | {} |",
                i.name,
                h.rate.unwrap_or(0.0),
                h.fairness.map(|f| format!("{f:.2}")).unwrap_or("–".into()),
                fmt_opt_ns(h.p50),
                fmt_opt_ns(h.p99),
                ratio(base.and_then(|b| Some(b.rate? / h.rate?))),
                ratio(base.and_then(|b| Some(h.p99? / b.p99?))),
            );
        }
        let _ = writeln!(
            w,
            "\n### Recovery after SIGKILL of the holder, a waiter present\n"
        );
        let _ = writeln!(
            w,
            "| lock | median kill → waiter holds | min | max | repeats |\n|---|---|---|---|---|"
        );
        for (i, rec) in &r.recovery {
            let min = rec.times.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = rec.times.iter().cloned().fold(0.0, f64::max);
            let med = match (rec.median, rec.never) {
                (Some(m), 0) => fmt_ns(m),
                (Some(m), k) => format!("{} ({k} never)", fmt_ns(m)),
                (None, k) if k > 0 => format!("never (within {} s)", plan.give_up.as_secs()),
                (None, _) => format!(
                    "error: {}",
                    rec.error.clone().unwrap_or_default().replace('|', "/")
                ),
            };
            if rec.median.is_none() && rec.never == 0 && !i.python {
                rust_broken = true;
            }
            let extra = if i.key == "flufl" {
                " (lifetime 3 s: frees only when it expires)"
            } else {
                ""
            };
            let _ = writeln!(
                w,
                "| {}{extra} | {med} | {} | {} | {} |",
                i.name,
                if rec.times.is_empty() {
                    "–".into()
                } else {
                    fmt_ns(min)
                },
                if rec.times.is_empty() {
                    "–".into()
                } else {
                    fmt_ns(max)
                },
                rec.times.len() + rec.never
            );
        }
        let _ = writeln!(
            w,
            "\n### Waiter CPU: one process blocked {} s on a held lock\n",
            plan.cpu_secs
        );
        let _ = writeln!(w, "| lock | CPU used while waiting |\n|---|---|");
        for (i, c) in &r.cpu {
            match c {
                Ok(p) => {
                    let _ = writeln!(w, "| {} | {p:.3} % |", i.name);
                }
                Err(e) => {
                    if !i.python {
                        rust_broken = true;
                    }
                    let _ = writeln!(w, "| {} | error: {} |", i.name, e.replace('|', "/"));
                }
            }
        }
        let _ = writeln!(w);
    }
    if !stalls.is_empty() {
        let _ = writeln!(
            w,
            "**Stalls** (a worker waited {} s for a lock that is held for microseconds at a time): {}.\n",
            plan.stall_secs,
            stalls.join("; ")
        );
    }

    let _ = writeln!(
        w,
        "## `lockfolder run DIR -- true` vs `flock FILE true` (issue 4)\n"
    );
    match &cli {
        Some((fsname, Some(l), Some(f), None)) => {
            let _ = writeln!(
                w,
                "| command | wall time (median of {}, {fsname}) |\n|---|---|",
                plan.cli_reps
            );
            let _ = writeln!(
                w,
                "| `lockfolder run DIR -- true` | {} |\n| `flock FILE true` | {} |",
                fmt_ns(*l),
                fmt_ns(*f)
            );
            let _ = writeln!(
                w,
                "\nRatio lockfolder run ÷ flock: **{:.2}×** (target ≤ 1.5×: {}).\n",
                l / f,
                yes(l / f <= 1.5)
            );
        }
        Some((_, _, _, Some(e))) => {
            let _ = writeln!(w, "Not measured: {e}\n");
        }
        _ => {
            let _ = writeln!(
                w,
                "Not measured: the `lockfolder` CLI binary is not available ({}).\n",
                a.cli_missing
            );
        }
    }
    if let Some(out) = cli_script {
        let _ = writeln!(
            w,
            "Output of `crates/lockfolder-cli/bench/run_vs_flock.sh`:\n\n```\n{}\n```\n",
            out.trim()
        );
    }
    // ---- issue 15: targets as ratios in this run, and the scaling table.
    let t = &results[0];
    let unc = |k: &str| {
        t.uncontended
            .iter()
            .find(|(i, _)| i.key == k)
            .and_then(|(_, v)| v.as_ref().ok().copied())
    };
    let yes = |ok: Option<bool>| match ok {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "not measured",
    };
    let _ = writeln!(
        w,
        "## Targets of issue 15 (measured on `{}`, ratios in this run, reported, not asserted)\n",
        t.name
    );
    let _ = writeln!(w, "| target | measured | met |\n|---|---|---|");
    if let Some((f, l)) = t.paired {
        let x = f / l;
        let _ = writeln!(w, "| uncontended Rust cycle ≥ 0.9× the raw-syscall floor (alternating blocks in one process) | {x:.2}× ({} vs {}) | {} |", fmt_ns(l), fmt_ns(f), yes(Some(x >= 0.9)));
    }
    if let (Some(f), Some(l)) = (t.raw_floor, unc("lockfolder")) {
        let x = f / l;
        let _ = writeln!(
            w,
            "| the same, lockfolder in a worker process | {x:.2}× ({} vs {}) | {} |",
            fmt_ns(l),
            fmt_ns(f),
            yes(Some(x >= 0.9))
        );
    }
    let h = |k: &str, n: usize| hot(t, k, n);
    let both = |n: usize, get: fn(&HotRow) -> Option<f64>| {
        Some((get(h("lockfolder", n)?)?, get(h("flock", n)?)?))
    };
    // One row: lockfolder's figure over flock's, met when at most `bound`.
    let mut ratio_row = |target: &str, pair: Option<(f64, f64)>, bound: f64| match pair {
        Some((l, f)) => {
            let _ = writeln!(
                w,
                "| {target} | {:.2}× ({} vs {}) | {} |",
                l / f,
                fmt_ns(l),
                fmt_ns(f),
                yes(Some(l / f <= bound))
            );
        }
        None => {
            let _ = writeln!(w, "| {target} | – | not measured |");
        }
    };
    ratio_row(
        "handoff p50 at N = 4 ≤ 2.5× flock's",
        both(4, |r| r.p50),
        2.5,
    );
    ratio_row("handoff p99 at N = 4 ≤ 3× flock's", both(4, |r| r.p99), 3.0);
    let fair8 = h("lockfolder", 8).and_then(|r| r.fairness);
    let _ = writeln!(
        w,
        "| fairness ≥ 0.95 at N = 8 | {} | {} |",
        fair8.map(|f| format!("{f:.2}")).unwrap_or("–".into()),
        yes(fair8.map(|f| f >= 0.95))
    );
    for (face, key) in [("Rust", "lockfolder"), ("Python face", "self")] {
        for n in [4, 8] {
            let ours = h(key, n).and_then(|r| Some((r.rate?, r.fairness?)));
            let peers: Vec<(String, f64, f64)> = ["fasteners", "portalocker"]
                .iter()
                .filter_map(|p| {
                    let r = h(p, n)?;
                    Some((p.to_string(), r.rate?, r.fairness?))
                })
                .collect();
            let Some((rate, fair)) = ours else {
                continue;
            };
            if peers.is_empty() {
                continue;
            }
            let shown: Vec<String> = peers
                .iter()
                .map(|(p, r, f)| format!("{:.2}× {p} ({r:.0}/s, fairness {f:.2})", rate / r))
                .collect();
            let ok = peers.iter().all(|(_, r, _)| rate >= *r);
            let _ = writeln!(w, "| contended throughput at N = {n}, lockfolder ({face}) ≥ every Python peer's, while fair | {rate:.0}/s, fairness {fair:.2}: {} | {} |", shown.join(", "), yes(Some(ok)));
        }
    }
    if let Some(ours) = unc("self") {
        let peers: Vec<String> = [
            "filelock",
            "softfilelock",
            "fasteners",
            "portalocker",
            "flufl",
            "lf102",
        ]
        .iter()
        .filter_map(|k| Some(format!("{} {:.2}×", k, unc(k)? / ours)))
        .collect();
        let slowest = [
            "filelock",
            "softfilelock",
            "fasteners",
            "portalocker",
            "flufl",
            "lf102",
        ]
        .iter()
        .filter_map(|k| unc(k))
        .fold(f64::INFINITY, f64::min);
        if slowest.is_finite() {
            let _ = writeln!(w, "| the Python face's uncontended cycle faster than every Python peer (peer time ÷ ours) | {} ({} per cycle) | {} |", peers.join(", "), fmt_ns(ours), yes(Some(slowest > ours)));
        }
    }
    let rec = |k: &str| {
        t.recovery
            .iter()
            .find(|(i, _)| i.key == k)
            .and_then(|(_, r)| r.median)
    };
    if let (Some(l), Some(f)) = (rec("lockfolder"), rec("flock")) {
        let _ = writeln!(
            w,
            "| recovery after SIGKILL ≤ 2× flock's | {:.2}× ({} vs {}) | {} |",
            l / f,
            fmt_ns(l),
            fmt_ns(f),
            yes(Some(l / f <= 2.0))
        );
    }
    let _ = writeln!(w, "| no cell slower than before by more than run-to-run noise | compare with the previous report; see the closing note | – |\n");

    if !t.scale_fill.is_empty() || !t.scale_wait.is_empty() {
        let _ = writeln!(w, "## Scaling (issue 15, on `{}`)\n", t.name);
        let _ = writeln!(w, "How one cycle grows with work. *Other entries*: files the lock must list and look past on every check but may not act on, named as the Linux NFS client names a deleted-but-open file (`.nfs` + 24 hex digits; the protocol ignores them). A file of any other unknown name would *block* the lock by design (doubt = held), so it cannot stand for a busy folder. The raw floor lists the same entries. Handoff: two lockfolder processes in the hot loop, every change of holder. Medians over {} repeats; hot loops of {} s.\n", plan.scale_reps, plan.scale_secs);
        let _ = writeln!(w, "| other entries | raw floor cycle | lockfolder uncontended cycle | throughput vs raw floor | handoff p50 (N = 2) | handoff p99 (N = 2) | counter = Σ acquisitions |\n|---|---|---|---|---|---|---|");
        for f in &t.scale_fill {
            let lf = match &f.uncontended {
                Ok(x) => fmt_ns(*x),
                Err(e) => {
                    rust_broken = true;
                    format!("error: {}", e.replace('|', "/"))
                }
            };
            let floor = match (&f.floor, &f.floor_err) {
                (Some(x), _) => fmt_ns(*x),
                (None, Some(e)) => format!("error: {}", e.replace('|', "/")),
                (None, None) => "–".into(),
            };
            let excl = excl_cell(
                &f.handoff,
                &mut mutex_failed,
                &mut lf_stalled,
                &mut rust_broken,
            );
            let _ = writeln!(
                w,
                "| {} | {floor} | {lf} | {} | {} | {} | {excl} |",
                f.others,
                ratio(f.floor.zip(f.uncontended.as_ref().ok()).map(|(a, b)| a / b)),
                fmt_opt_ns(f.handoff.p50),
                fmt_opt_ns(f.handoff.p99),
            );
        }
        if let Some(svg) = scaling_svg(t) {
            let name = format!(
                "{}-scaling.svg",
                a.out
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("RESULTS")
            );
            let path = a.out.with_file_name(&name);
            match std::fs::write(&path, svg) {
                Ok(()) => {
                    let _ = writeln!(w, "\n![The scaling table, drawn]({name})");
                }
                Err(e) => log(&format!("{}: {e}", path.display())),
            }
        }
        let _ = writeln!(w, "\nAs waiters grow: waiters + 1 processes in the hot loop (one holds, the rest wait), empty folder.\n");
        let _ = writeln!(w, "| waiters | lock | acquisitions/s | fairness (min/max) | handoff p50 | handoff p99 | counter = Σ acquisitions | p50 ÷ flock's | lockfolder ÷ flock, throughput |\n|---|---|---|---|---|---|---|---|---|");
        for (i, n, row) in &t.scale_wait {
            let fl = t
                .scale_wait
                .iter()
                .find(|(j, m, _)| j.key == "flock" && m == n)
                .map(|(_, _, r)| r);
            let excl = excl_cell(row, &mut mutex_failed, &mut lf_stalled, &mut rust_broken);
            let _ = writeln!(
                w,
                "| {n} | {} | {} | {} | {} | {} | {excl} | {} | {} |",
                i.name,
                row.rate.map(|r| format!("{r:.0}")).unwrap_or("–".into()),
                row.fairness
                    .map(|f| format!("{f:.2}"))
                    .unwrap_or("–".into()),
                fmt_opt_ns(row.p50),
                fmt_opt_ns(row.p99),
                ratio(fl.and_then(|f| Some(row.p50? / f.p50?))),
                ratio(fl.and_then(|f| Some(row.rate? / f.rate?))),
            );
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "## Shared and slots rows (issue 7)\n");
    if a.quick {
        let _ = writeln!(w, "Not measured in the quick run.\n");
    } else {
        let _ = writeln!(w, "Acquisitions/s of 8 processes in the hot loop; readers and slot holders only read the counter (they may overlap by design), writers read-modify-write it.\n");
        let _ = writeln!(w, "| cell | 8 writers (exclusive) | 8 readers (shared) | 8 contenders, slots = 4 | readers ÷ writers | slots ÷ writers |\n|---|---|---|---|---|---|");
        for r in &results {
            let g = |k: &str| hot(r, k, 8).and_then(|h| h.rate);
            let (wr, rd, sl) = (
                g("lockfolder"),
                g("lockfolder-shared"),
                g("lockfolder-slots4"),
            );
            let f = |x: Option<f64>| x.map(|v| format!("{v:.0}")).unwrap_or("–".into());
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                r.name,
                f(wr),
                f(rd),
                f(sl),
                ratio(rd.zip(wr).map(|(a, b)| a / b)),
                ratio(sl.zip(wr).map(|(a, b)| a / b))
            );
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "## How to read this\n\nSee `bench/README.md`. Absolute numbers on a shared machine are noise; compare the ratios, which come from the same run.");

    std::fs::write(&a.out, &md).map_err(|e| format!("{}: {e}", a.out.display()))?;
    log(&format!("wrote {}", a.out.display()));
    print!("{md}");
    if mutex_failed {
        eprintln!("lockfolder-bench: MUTUAL EXCLUSION FAILED for a Rust lock (see the report)");
        return Ok(1);
    }
    if a.quick && lf_stalled {
        eprintln!("lockfolder-bench: a lockfolder waiter STALLED: it waited {} s for a lock held for microseconds at a time (see the report)", plan.stall_secs);
        return Ok(3);
    }
    if a.quick && rust_broken {
        eprintln!("lockfolder-bench: a Rust cell could not be measured (see the report)");
        return Ok(1);
    }
    Ok(0)
}
