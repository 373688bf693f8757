//! Prints state counts and results for the configurations CI checks.
//!
//! `cargo run -p lockfolder-model --release` checks them all;
//! `-- --traces` also prints every counterexample;
//! `-- --crashes N` checks the real configurations with N crashes;
//! `-- --only NAME` checks the configurations whose name contains NAME;
//! `-- --no-symmetry` turns symmetry reduction off (more states, and the
//! livelock and starvation checks run too where they apply);
//! `-- --max-states N` raises or lowers the cap on states;
//! `-- --by-hand` checks the bigger configurations instead (up to 2.1 GB
//! and a minute or two each; combine with `--only`).

use lockfolder_model::configs::{self, Expect};
use lockfolder_model::model::slot_name;
use lockfolder_model::{check, Checks, Config, Report};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let traces = args.iter().any(|a| a == "--traces");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let crashes: Option<u8> =
        value("--crashes").map(|v| v.parse().expect("--crashes takes a number"));
    let only = value("--only").unwrap_or_default();
    let max_states: Option<usize> =
        value("--max-states").map(|v| v.parse().expect("--max-states takes a number"));
    let no_symmetry = args.iter().any(|a| a == "--no-symmetry");
    let adjust = |cfg: &mut Config| {
        if no_symmetry {
            cfg.symmetry = false;
        }
        if let Some(m) = max_states {
            cfg.max_states = m;
        }
    };
    println!(
        "{:<36} {:>7} {:>10} {:>12} {:>5} {:>8}  result",
        "configuration", "crashes", "states", "transitions", "depth", "seconds"
    );
    let by_hand = args.iter().any(|a| a == "--by-hand");
    let real = if by_hand {
        configs::by_hand()
    } else {
        configs::real()
    };
    for (name, mut cfg) in real {
        if !name.contains(&only) {
            continue;
        }
        if let Some(c) = crashes {
            cfg.crashes = c;
        }
        adjust(&mut cfg);
        let r = check(&cfg, Checks::all());
        let result = match (&r.two_holders, &r.held_back, &r.livelock) {
            (Some(_), _, _) => "UNSAFE".to_owned(),
            (None, Some(h), _) => format!("{} HELD BACK", slot_name(h.proc)),
            (None, None, Some(l)) => format!("safe, LIVELOCK (cycle of {} steps)", l.cycle.len()),
            (None, None, None) if !r.livelock_checked => {
                "safe, never held back (livelock not checked here)".to_owned()
            }
            (None, None, None) => format!(
                "safe, never held back, no livelock, {}",
                if r.starvation.is_some() {
                    "STARVATION of ours possible"
                } else {
                    "no starvation of ours"
                }
            ),
        };
        row(name, &cfg, &r, &result);
        println!(
            "{:<36} search {:.2}s; held-back check {:.2}s ({} solo searches); livelock+starvation {:.2}s",
            "",
            r.phases[0].as_secs_f64(),
            r.phases[1].as_secs_f64(),
            r.held_back_checked,
            r.phases[2].as_secs_f64()
        );
        if traces {
            print_traces(&r);
        }
    }
    for (name, mut cfg, expect) in configs::mutants() {
        if by_hand || !name.contains(&only) {
            continue;
        }
        adjust(&mut cfg);
        let checks = match expect {
            Expect::Unsafe => Checks::safety(),
            Expect::HeldBack | Expect::HeldBackAfterCrashes => Checks {
                livelock: false,
                stopped_fates: expect == Expect::HeldBack,
                ..Checks::all()
            },
            Expect::Livelock => Checks::all(),
        };
        let r = check(&cfg, checks);
        let result = match (expect, &r.two_holders, &r.held_back, &r.livelock) {
            (Expect::Unsafe, Some(t), _, _) => {
                format!("caught: unsafe after {} steps", t.steps.len())
            }
            (Expect::HeldBack | Expect::HeldBackAfterCrashes, None, Some(h), _) => format!(
                "caught: {} held back after {}+{} steps",
                slot_name(h.proc),
                h.trace.steps.len(),
                h.solo.len()
            ),
            (Expect::Livelock, None, _, Some(l)) => {
                format!("caught: livelock, cycle of {} steps", l.cycle.len())
            }
            _ => "NOT CAUGHT".to_owned(),
        };
        row(name, &cfg, &r, &result);
        if traces {
            print_traces(&r);
        }
    }
}

fn print_traces(r: &Report) {
    if let Some(t) = &r.two_holders {
        println!("{t}");
    }
    if let Some(h) = &r.held_back {
        println!("{h}");
    }
    if let Some(l) = &r.livelock {
        println!("livelock:\n{}cycle:", l.trace);
        for a in &l.cycle {
            println!("      {a}");
        }
    }
    if let Some(l) = &r.starvation {
        println!("starvation:\n{}cycle:", l.trace);
        for a in &l.cycle {
            println!("      {a}");
        }
    }
}

/// One line of the table: configuration, bounds, counts, time, verdict.
fn row(name: &str, cfg: &Config, r: &Report, result: &str) {
    println!(
        "{name:<36} {:>7} {:>10} {:>12} {:>5} {:>8.2}  {result}",
        cfg.crashes,
        r.states,
        r.transitions,
        r.depth,
        r.elapsed.as_secs_f64()
    );
}
