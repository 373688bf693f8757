//! The freshness probe: how often does a look at a folder through one mount
//! miss an entry another client has just published through another mount,
//! and for how long?
//!
//! Each trial has a publisher and an observer, one on each path (they swap
//! every trial). The observer first lists the folder (so that a client with
//! a directory cache has a warm one, as a contender's step-10 listing
//! leaves it), then the publisher publishes `<name>.json` the way a bid is
//! published (a temporary file, then a rename), then the observer looks, in
//! one of three ways:
//!
//! * `list`: it lists the folder without writing first (a contender's
//!   step-10 check, or a waiter that lists again);
//! * `publish`: it publishes an entry of its own through its path, then
//!   lists (a contender's step-30 listing after its bid: the case the
//!   protocol's safety rests on);
//! * `stat`: it looks the new name up directly (what a protocol must not
//!   rely on: lookups may be cached negatively).
//!
//! A look that misses the entry is a *miss*; the observer then repeats the
//! same look (without publishing again) every 10 ms until the entry shows or
//! `wait` has passed, and the delay from the publisher's rename to the first
//! look that saw it is recorded.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the observer looks for the other client's new entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    List,
    Publish,
    Stat,
}

impl Look {
    pub const ALL: [Look; 3] = [Look::List, Look::Publish, Look::Stat];

    pub fn name(self) -> &'static str {
        match self {
            Look::List => "list",
            Look::Publish => "publish",
            Look::Stat => "stat",
        }
    }

    pub fn parse(word: &str) -> Option<Look> {
        Look::ALL.into_iter().find(|l| l.name() == word)
    }
}

/// How a probe is run.
#[derive(Debug, Clone)]
pub struct FreshOptions {
    /// The same folder seen through two mounts (created through the first
    /// if missing; it should be new).
    pub a: PathBuf,
    pub b: PathBuf,
    /// Trials per kind of look, at most.
    pub trials: u32,
    pub looks: Vec<Look>,
    /// How long a missed entry is waited for.
    pub wait: Duration,
    /// Time budget for the whole probe, shared equally by the looks; a look
    /// whose share runs out stops early (its trial count says so).
    pub budget: Duration,
}

/// What one kind of look found.
#[derive(Debug, Clone)]
pub struct LookReport {
    pub look: Look,
    pub trials: u32,
    /// Looks that did not show the just-published entry.
    pub missed: u32,
    /// Misses that never showed it within `wait`.
    pub never: u32,
    /// Delay from the rename to the first look that showed it, per miss
    /// that ended.
    pub delays: Vec<Duration>,
    /// Trials whose entry, deleted by its publisher, was still listed by
    /// the observer right after (harmless for safety; it can look like a
    /// live rival for a while).
    pub ghosts: u32,
}

impl LookReport {
    pub fn line(&self, wait: Duration) -> String {
        let mut d = self.delays.clone();
        d.sort_unstable();
        let pick = |q: f64| {
            if d.is_empty() {
                "none".to_owned()
            } else {
                let i = ((d.len() - 1) as f64 * q).round() as usize;
                format!("{:.1}", d[i].as_secs_f64() * 1000.0)
            }
        };
        format!(
            "lockfolder-freshness: look={} trials={} missed={} never_within_{}s={} \
             delay_ms_min={} delay_ms_median={} delay_ms_max={} ghosts={}",
            self.look.name(),
            self.trials,
            self.missed,
            wait.as_secs(),
            self.never,
            pick(0.0),
            pick(0.5),
            pick(1.0),
            self.ghosts
        )
    }
}

/// An error of the probe itself (not a finding), naming the operation and
/// the path.
#[derive(Debug)]
pub struct ProbeError {
    what: String,
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.what, self.path.display(), self.source)
    }
}

impl std::error::Error for ProbeError {}

fn at(what: &str, path: &Path) -> impl FnOnce(io::Error) -> ProbeError {
    let (what, path) = (what.to_owned(), path.to_path_buf());
    move |source| ProbeError { what, path, source }
}

fn names(dir: &Path) -> Result<Vec<String>, ProbeError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(at("list", dir))? {
        out.push(
            e.map_err(at("list", dir))?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    Ok(out)
}

/// Publishes `<name>.json` through `dir` as a bid is published.
fn publish(dir: &Path, name: &str) -> Result<PathBuf, ProbeError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(format!("{name}.json"));
    fs::write(&tmp, b"{}\n").map_err(at("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(at("rename into", &path))?;
    Ok(path)
}

fn sees(look: Look, dir: &Path, name: &str) -> Result<bool, ProbeError> {
    let file = format!("{name}.json");
    match look {
        Look::List | Look::Publish => Ok(names(dir)?.contains(&file)),
        Look::Stat => {
            let p = dir.join(&file);
            match fs::symlink_metadata(&p) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(at("stat", &p)(e)),
            }
        }
    }
}

fn remove(path: &Path) -> Result<(), ProbeError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(at("remove", path)(e)),
    }
}

/// Runs the probe. `Err` only if the probe could not run (a path that is
/// not there, an I/O error); misses are findings, in the report.
///
/// # Errors
///
/// A [`ProbeError`] naming the operation and the path that failed.
pub fn run(opts: &FreshOptions) -> Result<Vec<LookReport>, ProbeError> {
    fs::create_dir_all(&opts.a).map_err(at("create", &opts.a))?;
    let seen_by_b = Instant::now() + Duration::from_secs(30);
    while !opts.b.is_dir() {
        if Instant::now() > seen_by_b {
            return Err(at("wait 30 s for", &opts.b)(io::Error::new(
                io::ErrorKind::NotFound,
                format!("made through {}, not visible here", opts.a.display()),
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let share = opts.budget / opts.looks.len().max(1) as u32;
    let mut out = Vec::new();
    for &look in &opts.looks {
        let began = Instant::now();
        let mut r = LookReport {
            look,
            trials: 0,
            missed: 0,
            never: 0,
            delays: Vec::new(),
            ghosts: 0,
        };
        while r.trials < opts.trials && began.elapsed() < share {
            let (pub_dir, obs_dir) = if r.trials % 2 == 0 {
                (&opts.a, &opts.b)
            } else {
                (&opts.b, &opts.a)
            };
            let name = format!("p{}-{}-{}", std::process::id(), look.name(), r.trials);
            // Warm the observer's cache, as a contender's listing does.
            names(obs_dir)?;
            let theirs = publish(pub_dir, &name)?;
            let published = Instant::now();
            let ours = match look {
                Look::Publish => Some(publish(obs_dir, &format!("{name}-own"))?),
                _ => None,
            };
            r.trials += 1;
            if !sees(look, obs_dir, &name)? {
                r.missed += 1;
                let mut found = false;
                while published.elapsed() < opts.wait {
                    std::thread::sleep(Duration::from_millis(10));
                    if sees(look, obs_dir, &name)? {
                        found = true;
                        break;
                    }
                }
                if found {
                    r.delays.push(published.elapsed());
                } else {
                    r.never += 1;
                }
            }
            if let Some(ours) = ours {
                remove(&ours)?;
            }
            remove(&theirs)?;
            let gone = format!("{name}.json");
            if names(obs_dir)?.contains(&gone) {
                r.ghosts += 1;
            }
        }
        out.push(r);
    }
    Ok(out)
}
