//! Prints state counts and results for the configurations CI checks.
//!
//! `cargo run -p lockfolder-model --release` checks them all;
//! `-- --traces` also prints every counterexample.

use lockfolder_model::{check, configs, Checks};

fn main() {
    let traces = std::env::args().any(|a| a == "--traces");
    println!(
        "{:<26} {:>10} {:>12} {:>6} {:>9}  result",
        "configuration", "states", "transitions", "depth", "seconds"
    );
    for (name, cfg) in configs::real() {
        let r = check(&cfg, Checks::all());
        let result = match (&r.two_holders, &r.wedge, &r.livelock) {
            (Some(_), _, _) => "TWO HOLDERS".to_owned(),
            (None, Some(w), _) => {
                format!("WEDGE of {}", lockfolder_model::model::slot_name(w.proc))
            }
            (None, None, Some(_)) => "safe, no wedge, LIVELOCK".to_owned(),
            (None, None, None) => format!(
                "safe, no wedge, no livelock ({} solo searches)",
                r.wedge_checked
            ),
        };
        println!(
            "{name:<26} {:>10} {:>12} {:>6} {:>9.2}  {result}",
            r.states,
            r.transitions,
            r.depth,
            r.elapsed.as_secs_f64()
        );
        println!(
            "{:<26} phases: search {:.2}s, wedge {:.2}s, livelock {:.2}s",
            "",
            r.phases[0].as_secs_f64(),
            r.phases[1].as_secs_f64(),
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
                println!("{}cycle: {:?}", l.trace, l.cycle);
            }
        }
    }
    for (name, cfg) in configs::mutants() {
        let r = check(&cfg, Checks::safety());
        let result = if r.two_holders.is_some() {
            "caught: two holders"
        } else {
            "NOT CAUGHT"
        };
        println!(
            "{name:<26} {:>10} {:>12} {:>6} {:>9.2}  {result}",
            r.states,
            r.transitions,
            r.depth,
            r.elapsed.as_secs_f64()
        );
        if traces {
            if let Some(t) = &r.two_holders {
                println!("{t}");
            }
        }
    }
}
