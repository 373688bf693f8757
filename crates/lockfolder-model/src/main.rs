//! Prints state counts and results for the configurations CI checks.
//!
//! `cargo run -p lockfolder-model --release` checks them all;
//! `-- --traces` also prints every counterexample;
//! `-- --crashes N` checks the real configurations with N crashes;
//! `-- --only NAME` checks the configurations whose name contains NAME;
//! `-- --no-symmetry` turns symmetry reduction off (more states, and the
//! livelock and starvation checks run too);
//! `-- --max-states N` raises or lowers the cap on states.

use lockfolder_model::model::slot_name;
use lockfolder_model::{check, configs, Checks, Config, Report};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let traces = args.iter().any(|a| a == "--traces");
    let crashes: Option<u8> = args
        .iter()
        .position(|a| a == "--crashes")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("--crashes takes a number"));
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = value("--only").unwrap_or_default();
    let max_states: Option<usize> =
        value("--max-states").map(|v| v.parse().expect("--max-states takes a number"));
    let no_symmetry = args.iter().any(|a| a == "--no-symmetry");
    let adjust = |cfg: &mut lockfolder_model::Config| {
        if no_symmetry {
            cfg.symmetry = false;
        }
        if let Some(m) = max_states {
            cfg.max_states = m;
        }
    };
    println!(
        "{:<28} {:>8} {:>10} {:>12} {:>6} {:>8}  result",
        "configuration", "crashes", "states", "transitions", "depth", "seconds"
    );
    for (name, mut cfg) in configs::real() {
        if !name.contains(&only) {
            continue;
        }
        if let Some(c) = crashes {
            cfg.crashes = c;
        }
        adjust(&mut cfg);
        let r = check(&cfg, Checks::all());
        let result = match (&r.two_holders, &r.wedge, &r.livelock) {
            (Some(_), _, _) => "TWO HOLDERS".to_owned(),
            (None, Some(w), _) => format!("WEDGE of {}", slot_name(w.proc)),
            (None, None, Some(l)) => format!(
                "safe, no wedge, LIVELOCK (cycle of {} steps)",
                l.cycle.len()
            ),
            (None, None, None) if !r.livelock_checked => {
                "safe, no wedge (symmetry-reduced: livelock not checked)".to_owned()
            }
            (None, None, None) => format!(
                "safe, no wedge, no livelock, {}",
                if r.starvation.is_some() {
                    "STARVATION of ours possible"
                } else {
                    "no starvation of ours"
                }
            ),
        };
        row(name, &cfg, &r, &result);
        println!(
            "{:<28} search {:.2}s; wedge check {:.2}s ({} solo searches); livelock+starvation {:.2}s",
            "",
            r.phases[0].as_secs_f64(),
            r.phases[1].as_secs_f64(),
            r.wedge_checked,
            r.phases[2].as_secs_f64()
        );
        if traces {
            if let Some(t) = &r.two_holders {
                println!("{t}");
            }
            if let Some(w) = &r.wedge {
                println!("{}", w.trace);
            }
            if let Some(l) = &r.livelock {
                println!("livelock:\n{}cycle: {:?}", l.trace, l.cycle);
            }
            if let Some(l) = &r.starvation {
                println!("starvation:\n{}cycle:", l.trace);
                for a in &l.cycle {
                    println!("      {a}");
                }
            }
        }
    }
    for (name, mut cfg) in configs::mutants() {
        if !name.contains(&only) {
            continue;
        }
        adjust(&mut cfg);
        let r = check(&cfg, Checks::safety());
        let result = match &r.two_holders {
            Some(t) => format!("caught: two holders after {} steps", t.steps.len()),
            None => "NOT CAUGHT".to_owned(),
        };
        row(name, &cfg, &r, &result);
        if traces {
            if let Some(t) = &r.two_holders {
                println!("{t}");
            }
        }
    }
}

/// One line of the table: configuration, bounds, counts, time, verdict.
fn row(name: &str, cfg: &Config, r: &Report, result: &str) {
    println!(
        "{name:<28} {:>8} {:>10} {:>12} {:>6} {:>8.2}  {result}",
        cfg.crashes,
        r.states,
        r.transitions,
        r.depth,
        r.elapsed.as_secs_f64()
    );
}
