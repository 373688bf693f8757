//! The orchestrator: runs every cell side by side in one process tree and
//! collects what the workers report. See `bench/README.md`.

use crate::worker::{mono_ns, read_counter, write_counter};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// One lock implementation under test.
#[derive(Clone, Debug, Serialize)]
pub struct Impl {
    /// Name shown in the tables.
    pub name: String,
    /// Lock name given to the worker.
    pub key: String,
    /// Program and leading arguments, before `worker`.
    #[serde(skip)]
    pub cmd: Vec<String>,
    /// Locks a folder (else a file).
    pub folder: bool,
    pub python: bool,
}

impl Impl {
    fn command(&self, mode: &str, lock: &Path, extra: &[String]) -> Command {
        let mut c = Command::new(&self.cmd[0]);
        c.args(&self.cmd[1..])
            .arg("worker")
            .arg(&self.key)
            .arg(mode)
            .arg(lock)
            .args(extra)
            .stdin(Stdio::null());
        c
    }

    fn lock_path(&self, cell: &Path) -> PathBuf {
        cell.join(if self.folder { "lock.d" } else { "lock.file" })
    }

    /// Seconds the workers need to start (Python imports) before the clock.
    fn warmup(&self) -> Duration {
        Duration::from_millis(if self.python { 1000 } else { 300 })
    }
}

/// A fresh, empty cell folder under `root`.
pub fn cell(root: &Path, name: &str) -> Result<PathBuf, String> {
    let p = root.join(name);
    if p.exists() {
        std::fs::remove_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(p)
}

fn first_error(text: &str) -> String {
    let t = text.trim();
    let last = t.lines().last().unwrap_or("").trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(last) {
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return e.to_owned();
        }
    }
    let mut s: String = last.chars().take(160).collect();
    if s.is_empty() {
        s = "no output".to_owned();
    }
    s
}

/// Waits for `child` until `deadline`; kills it if it is still running then.
fn wait_deadline(child: &mut Child, deadline: Instant) -> Result<std::process::ExitStatus, ()> {
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Ok(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A child whose stdout lines arrive on a channel as they are printed.
struct LineChild {
    child: Child,
    lines: Receiver<String>,
}

impl LineChild {
    fn spawn(mut cmd: Command) -> Result<LineChild, String> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let err = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            // Errors go to stderr; forward the last lines tagged for messages.
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {line}"));
            }
        });
        Ok(LineChild { child, lines: rx })
    }

    /// The next stdout line that passes `want`, before `deadline`.
    fn expect(&self, deadline: Instant, want: impl Fn(&str) -> bool) -> Result<String, String> {
        let mut stderr = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with("stderr: ") => {
                    stderr = l;
                }
                Ok(l) if want(&l) => return Ok(l),
                Ok(l) => {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) {
                        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                            return Err(e.to_owned());
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "timed out {}",
                        stderr.chars().take(160).collect::<String>()
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "exited {}",
                        stderr.chars().take(200).collect::<String>()
                    ))
                }
            }
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- cells

/// Puts `n` entries that every lock must look past but none may act on
/// into the folder `lock` (created if needed): names of the shape the Linux
/// NFS client gives a file deleted while still open (`.nfs` + 24 hex
/// digits). lockfolder lists them on every check and ignores them (they are
/// never a rival, never judged, never removed); a file of any other
/// unknown name would block the lock by design (doubt = held), so it cannot
/// stand for "a busy folder". Nothing is created for a file lock.
pub fn fill(imp: &Impl, lock: &Path, n: usize) -> Result<(), String> {
    if n == 0 || !imp.folder {
        return Ok(());
    }
    fill_dir(lock, n)
}

/// [`fill`] for any folder (the raw floor's too).
pub fn fill_dir(dir: &Path, n: usize) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for i in 0..n {
        let p = dir.join(format!(".nfs{:024x}", 0x5ca1_e000_0000_u64 + i as u64));
        std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

/// Runs the worker's `uncontended` mode, the folder holding `others`
/// ignored entries ([`fill`]); ns per cycle.
pub fn uncontended(
    imp: &Impl,
    root: &Path,
    iters: u64,
    rep: usize,
    others: usize,
) -> Result<f64, String> {
    let c = cell(root, &format!("{}-uncontended-{others}-{rep}", imp.key))?;
    fill(imp, &imp.lock_path(&c), others)?;
    let out = imp
        .command(
            "uncontended",
            &imp.lock_path(&c),
            &["--iters".into(), iters.to_string()],
        )
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim().lines().last().unwrap_or(""))
        .map_err(|_| first_error(&format!("{text}{}", String::from_utf8_lossy(&out.stderr))))?;
    let _ = std::fs::remove_dir_all(&c);
    v.get("ns_per_op")
        .and_then(|x| x.as_f64())
        .ok_or_else(|| first_error(&text))
}

/// One contended run.
#[derive(Clone, Debug, Serialize)]
pub struct Contended {
    pub secs: f64,
    pub per_worker: Vec<u64>,
    /// Workers that gave up after waiting the stall timeout for one acquisition.
    pub stalled: u64,
    /// Whether the counter check applies (exclusive locks only).
    pub checked: bool,
    /// Exceptions the workers' lock raised and they caught (Python peers).
    pub exceptions: std::collections::BTreeMap<String, u64>,
    pub total: u64,
    pub counter: u64,
    pub handoffs: usize,
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
}

impl Contended {
    pub fn exclusive(&self) -> bool {
        !self.checked || self.counter == self.total
    }
    pub fn fairness(&self) -> f64 {
        let min = self.per_worker.iter().min().copied().unwrap_or(0);
        let max = self.per_worker.iter().max().copied().unwrap_or(0);
        if max == 0 {
            0.0
        } else {
            min as f64 / max as f64
        }
    }
    pub fn rate(&self) -> f64 {
        self.total as f64 / self.secs
    }
}

pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

/// N workers in a hot loop for `secs` seconds, the folder holding `others`
/// ignored entries ([`fill`]).
/// A worker that waits `stall` seconds for one acquisition gives up.
pub fn contended(
    imp: &Impl,
    root: &Path,
    n: usize,
    secs: f64,
    stall: f64,
    rep: usize,
    others: usize,
) -> Result<Contended, String> {
    let c = cell(root, &format!("{}-hot{n}-{others}-{rep}", imp.key))?;
    let lock = imp.lock_path(&c);
    fill(imp, &lock, others)?;
    let counter = c.join("counter");
    write_counter(&counter, 0, -1, 0)?;
    let start = mono_ns() + imp.warmup().as_nanos() as u64;
    let end = start + (secs * 1e9) as u64;
    let mut kids = Vec::new();
    for id in 0..n {
        let out = std::fs::File::create(c.join(format!("out-{id}"))).map_err(|e| e.to_string())?;
        let err = std::fs::File::create(c.join(format!("err-{id}"))).map_err(|e| e.to_string())?;
        let extra: Vec<String> = vec![
            "--counter".into(),
            counter.display().to_string(),
            "--id".into(),
            id.to_string(),
            "--start".into(),
            start.to_string(),
            "--end".into(),
            end.to_string(),
            "--timeout".into(),
            stall.to_string(),
        ];
        let child = imp
            .command("hot", &lock, &extra)
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        kids.push(child);
    }
    let deadline = Instant::now()
        + imp.warmup()
        + Duration::from_secs_f64(secs + stall)
        + Duration::from_secs(20);
    let mut hung = 0;
    for k in &mut kids {
        if wait_deadline(k, deadline).is_err() {
            hung += 1;
        }
    }
    if hung > 0 {
        return Err(format!("{hung} of {n} workers hung (killed)"));
    }
    let mut per_worker = Vec::new();
    let mut stalled = 0;
    let mut exceptions = std::collections::BTreeMap::new();
    let mut lat = Vec::new();
    for id in 0..n {
        let text = std::fs::read_to_string(c.join(format!("out-{id}"))).unwrap_or_default();
        let line = text.trim().lines().last().unwrap_or("");
        let v: serde_json::Value = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v.get("acq").is_some() => v,
            _ => {
                let err = std::fs::read_to_string(c.join(format!("err-{id}"))).unwrap_or_default();
                return Err(format!(
                    "worker {id}: {}",
                    first_error(&format!("{text}\n{err}"))
                ));
            }
        };
        per_worker.push(v["acq"].as_u64().unwrap_or(0));
        stalled += v["timeouts"].as_u64().unwrap_or(0);
        if let Some(m) = v["exceptions"].as_object() {
            for (k, n) in m {
                *exceptions.entry(k.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
            }
        }
        if let Some(l) = v["lat"].as_array() {
            lat.extend(l.iter().filter_map(|x| x.as_u64()));
        }
    }
    let (count, _, _) = read_counter(&counter)?;
    lat.sort_unstable();
    let _ = std::fs::remove_dir_all(&c);
    Ok(Contended {
        secs,
        total: per_worker.iter().sum(),
        per_worker,
        stalled,
        checked: crate::locks::is_exclusive(&imp.key),
        exceptions,
        counter: count,
        handoffs: lat.len(),
        p50_ns: percentile(&lat, 0.50),
        p99_ns: percentile(&lat, 0.99),
    })
}

/// Time from SIGKILL of the holder to the waiter's acquisition; `None` if the
/// waiter had not acquired after `give_up`.
pub fn recovery(
    imp: &Impl,
    root: &Path,
    give_up: Duration,
    rep: usize,
) -> Result<Option<u64>, String> {
    let c = cell(root, &format!("{}-recovery-{rep}", imp.key))?;
    let lock = imp.lock_path(&c);
    let holder = LineChild::spawn(imp.command("hold", &lock, &[]))?;
    let start_deadline = Instant::now() + Duration::from_secs(15);
    if let Err(e) = holder.expect(start_deadline, |l| l == "held") {
        holder.kill();
        return Err(format!("holder: {e}"));
    }
    let timeout = (give_up + Duration::from_secs(2)).as_secs_f64().to_string();
    let waiter = match LineChild::spawn(imp.command("wait", &lock, &["--timeout".into(), timeout]))
    {
        Ok(w) => w,
        Err(e) => {
            holder.kill();
            return Err(e);
        }
    };
    if let Err(e) = waiter.expect(start_deadline, |l| l == "waiting") {
        holder.kill();
        waiter.kill();
        return Err(format!("waiter: {e}"));
    }
    // Let the waiter settle into its wait (and, for lockfolder, queue its bid).
    std::thread::sleep(Duration::from_millis(300));
    let mut holder = holder;
    let t_kill = mono_ns();
    let _ = holder.child.kill();
    let _ = holder.child.wait();
    let got = waiter.expect(Instant::now() + give_up, |l| {
        l.starts_with("acquired ") || l == "timeout"
    });
    waiter.kill();
    let _ = std::fs::remove_dir_all(&c);
    match got {
        Ok(l) if l.starts_with("acquired ") => {
            let t: u64 = l[9..]
                .trim()
                .parse()
                .map_err(|_| format!("bad line {l:?}"))?;
            Ok(Some(t.saturating_sub(t_kill)))
        }
        Ok(_) => Ok(None),
        Err(e) if e.starts_with("timed out") => Ok(None),
        Err(e) => Err(format!("waiter: {e}")),
    }
}

/// CPU used by a waiter blocked `secs` seconds on a held lock, for every
/// implementation at once (they sleep, so they barely disturb each other).
pub fn waiter_cpu(imps: &[Impl], root: &Path, secs: f64) -> Vec<Result<f64, String>> {
    let mut running = Vec::new();
    for imp in imps {
        let r = (|| {
            let c = cell(root, &format!("{}-cpu", imp.key))?;
            let lock = imp.lock_path(&c);
            let holder = LineChild::spawn(imp.command("hold", &lock, &[]))?;
            if let Err(e) = holder.expect(Instant::now() + Duration::from_secs(15), |l| l == "held")
            {
                holder.kill();
                return Err(format!("holder: {e}"));
            }
            let extra = vec![
                "--secs".into(),
                secs.to_string(),
                "--timeout".into(),
                (secs + 30.0).to_string(),
            ];
            match LineChild::spawn(imp.command("cpu", &lock, &extra)) {
                Ok(w) => Ok((holder, w, c)),
                Err(e) => {
                    holder.kill();
                    Err(e)
                }
            }
        })();
        running.push(r);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs + 20.0);
    running
        .into_iter()
        .map(|r| {
            let (holder, waiter, c) = r?;
            let got = waiter.expect(deadline, |l| l.contains("cpu_ns"));
            holder.kill();
            waiter.kill();
            let _ = std::fs::remove_dir_all(&c);
            let v: serde_json::Value = serde_json::from_str(&got?).map_err(|e| e.to_string())?;
            let cpu = v["cpu_ns"].as_f64().unwrap_or(f64::NAN);
            let wall = v["wall_ns"].as_f64().unwrap_or(f64::NAN);
            Ok(100.0 * cpu / wall)
        })
        .collect()
}

/// Median wall time (ns) of running `argv` to completion, `reps` times.
pub fn wall(argv: &[String], reps: usize) -> Result<Vec<u64>, String> {
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = mono_ns();
        let st = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("{}: {e}", argv[0]))?;
        let dt = mono_ns() - t0;
        if !st.status.success() {
            return Err(format!(
                "{} failed: {}",
                argv.join(" "),
                first_error(&String::from_utf8_lossy(&st.stderr))
            ));
        }
        v.push(dt);
    }
    Ok(v)
}
