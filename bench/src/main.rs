//! lockfolder's benchmark: `bash bench/run.sh [--quick]` builds this binary and
//! runs `lockfolder-bench suite`, which measures lockfolder beside the raw
//! system-call floor, flock and the Python lock libraries, each cell in fresh
//! processes, and writes `bench/RESULTS.md`. `bench/README.md` explains every
//! number.
//!
//! Subcommands:
//!
//! * `suite [--quick] --out FILE --fs NAME=DIR ... [--python PY] [--python-lf102 PY]
//!   [--python-self PY | --self-missing WHY] [--peers peers.py] [--cli BIN]
//!   [--cli-script SH] [--command TEXT]`
//! * `worker LOCK MODE PATH ...` (see `worker.rs`; also used by `peers.py`'s
//!   twin, so both speak the same protocol).

#![forbid(unsafe_code)]

mod floor;
mod locks;
mod report;
mod suite;
mod worker;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("worker") => match worker::run(&args[1..]) {
            Ok(()) => 0,
            Err(e) => {
                println!("{}", serde_json::json!({ "error": e }));
                1
            }
        },
        Some("suite") => match report::suite(&args[1..]) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("lockfolder-bench: {e}");
                2
            }
        },
        _ => {
            eprintln!("usage: lockfolder-bench suite [--quick] --out FILE --fs NAME=DIR ... | worker LOCK MODE PATH ...");
            2
        }
    };
    std::process::exit(code);
}
