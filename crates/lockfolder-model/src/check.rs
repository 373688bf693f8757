//! The explorer: breadth-first search over every reachable state with state
//! hashing, then the liveness questions on the graph it found.
//!
//! * **Safety**: no reachable state has an exclusive holder with another
//!   holder, nor more holders than slots. Checked on every state as it is
//!   found; BFS makes the first counterexample a shortest one.
//! * **Not held back**: from every reachable state, for every contender that
//!   runs, and every way the other running contenders can end (each crashes
//!   or is stopped for ever, leaving its entries), the contender running
//!   alone never reaches a state from which it cannot come to hold, unless
//!   entries that are not queue markers legitimately keep it out (a live,
//!   stopped or unjudgeable bid, an entry that is not a bid).
//! * **Livelock**: is there a fair cycle in which nobody holds the lock, nobody
//!   crashes, restarts or gives up, every contender that is contending keeps
//!   taking steps, and none ever enters? Found with Tarjan's strongly
//!   connected components on the no-holder part of the graph. **Starvation**:
//!   the same, with one waiter of ours waiting throughout while others may
//!   hold.
use crate::model::{slot_name, Action, Config, Pc, Proc, State, Step, MAX_PROCS};
use hashbrown::HashTable;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// A small multiplicative hasher (the states are short byte strings; SipHash
/// would dominate the run time).
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A path from the initial state.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Where it starts.
    pub initial: State,
    /// Each step and the state after it.
    pub steps: Vec<(Action, State)>,
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "   0. {}", self.initial)?;
        for (i, (a, s)) in self.steps.iter().enumerate() {
            writeln!(f, "{:4}. {a}\n      -> {s}", i + 1)?;
        }
        Ok(())
    }
}

/// A fair cycle without progress.
#[derive(Clone, Debug)]
pub struct Livelock {
    /// How a state of the cycle is reached.
    pub trace: Trace,
    /// One cycle back to that state.
    pub cycle: Vec<Action>,
    /// States in the strongly connected component.
    pub component: usize,
}

/// The result of checking one configuration.
#[derive(Clone, Debug)]
pub struct Report {
    /// First state that breaks safety (two holders of an exclusive lock, a
    /// writer with a reader, more than N holders), if any.
    pub two_holders: Option<Trace>,
    /// Reachable states (all of them, unless a safety violation stopped the
    /// search early).
    pub states: usize,
    /// A contender held back for ever, if checked and any.
    pub held_back: Option<HeldBack>,
    /// Projected states whose solo search was run for the held-back check.
    pub held_back_checked: usize,
    /// A livelock, if checked and any.
    pub livelock: Option<Livelock>,
    /// Whether the livelock and starvation questions were asked.
    pub livelock_checked: bool,
    /// A fair cycle in which a contender of ours waits forever while others
    /// may enter (starvation), if checked and any.
    pub starvation: Option<Livelock>,
    /// Transitions explored.
    pub transitions: u64,
    /// Length of the longest shortest path.
    pub depth: usize,
    /// The most contenders holding at once in any state found (shows that
    /// the limits are reached, so that their checks are not vacuous).
    pub max_holders: usize,
    /// Wall-clock time of the whole check.
    pub elapsed: Duration,
    /// Of which: the search, the held-back check, the livelock check.
    pub phases: [Duration; 3],
}

/// Which properties to check.
#[derive(Clone, Copy, Debug)]
pub struct Checks {
    /// Check the held-back property (after a complete safe search).
    pub held_back: bool,
    /// In the held-back check, accept legitimate blockers (the property as
    /// defined). Without: any state from which a contender alone can never
    /// hold is reported (a plain wedge check, to show the detector fires).
    pub legitimate_blockers: bool,
    /// In the held-back check, the other contenders may also be stopped
    /// for ever (not only crash).
    pub stopped_fates: bool,
    /// Look for livelocks (after a complete safe search).
    pub livelock: bool,
    /// Stop at the first safety violation.
    pub stop_on_violation: bool,
}

impl Checks {
    /// Everything.
    pub fn all() -> Checks {
        Checks {
            held_back: true,
            legitimate_blockers: true,
            stopped_fates: true,
            livelock: true,
            stop_on_violation: true,
        }
    }
    /// Safety only, stopping at the first counterexample (for mutants).
    pub fn safety() -> Checks {
        Checks {
            held_back: false,
            legitimate_blockers: true,
            stopped_fates: true,
            livelock: false,
            stop_on_violation: true,
        }
    }
}

/// The reachable state graph.
pub struct Graph {
    /// States in BFS order; index 0 is the initial state.
    pub states: Vec<State>,
    /// For every state but the first: its BFS parent and the step from it.
    pub parent: Vec<(u32, Action)>,
    /// Indices into `states`, by the state's hash: each state is stored
    /// once.
    index: HashTable<u32>,
}

fn hash_of(s: &State) -> u64 {
    BuildHasherDefault::<FxHasher>::default().hash_one(s)
}

impl Graph {
    /// The index of state `s`, if it has been found.
    pub fn find(&self, s: &State) -> Option<u32> {
        self.index
            .find(hash_of(s), |&i| self.states[i as usize] == *s)
            .copied()
    }

    /// The index of a state known to be in the graph.
    fn at(&self, s: &State) -> u32 {
        self.find(s).expect("a successor of a state found is found")
    }

    /// The path from the initial state to state `i`.
    pub fn trace_to(&self, mut i: u32) -> Trace {
        let mut steps = Vec::new();
        while i != 0 {
            let (p, a) = self.parent[i as usize];
            steps.push((a, self.states[i as usize].clone()));
            i = p;
        }
        steps.reverse();
        Trace {
            initial: self.states[0].clone(),
            steps,
        }
    }
}

/// Checks one configuration.
pub fn check(cfg: &Config, checks: Checks) -> Report {
    let start = Instant::now();
    let (graph, transitions, depth, bad) = explore(cfg, checks.stop_on_violation);
    let mut report = Report {
        states: graph.states.len(),
        transitions,
        depth,
        max_holders: graph.states.iter().map(State::holders).max().unwrap_or(0),
        two_holders: bad.map(|i| concrete(cfg, graph.trace_to(i))),
        held_back: None,
        held_back_checked: 0,
        livelock: None,
        starvation: None,
        livelock_checked: false,
        elapsed: Duration::ZERO,
        phases: [start.elapsed(), Duration::ZERO, Duration::ZERO],
    };
    if report.two_holders.is_none() {
        if checks.held_back {
            let t = Instant::now();
            let (w, n) = find_held_back(cfg, &graph, &checks);
            report.held_back = w;
            report.held_back_checked = n;
            report.phases[1] = t.elapsed();
        }
        // On the reduced graph a cycle may end in a renaming of where it
        // began, which the fairness test cannot follow: livelock and
        // starvation are checked on un-reduced graphs only. Where an entry
        // may keep everyone out for ever legitimately (a stopped owner, an
        // unjudgeable leftover), "nobody holds" is no livelock of the rules;
        // there the held-back property is the liveness question. Cached
        // listings returned for ever are not a schedule of a real cache.
        if checks.livelock && !cfg.symmetry && cfg.livelock_applies() {
            let t = Instant::now();
            report.livelock = find_livelock(cfg, &graph, None);
            // Our slots run the same code from the same initial state, so
            // the graph is symmetric under swapping them: one victim suffices.
            // Contenders of one class (same code, same mode) are
            // interchangeable: one victim per class suffices.
            report.starvation = (0..cfg.flavors.len())
                .filter(|&p| cfg.flavors[p] == crate::model::Flavor::Ours)
                .filter(|&p| (0..p).all(|q| cfg.class(q) != cfg.class(p)))
                .find_map(|p| find_livelock(cfg, &graph, Some(p)));
            report.livelock_checked = true;
            report.phases[2] = t.elapsed();
        }
    }
    report.elapsed = start.elapsed();
    report
}

fn explore(cfg: &Config, stop: bool) -> (Graph, u64, usize, Option<u32>) {
    let init = State::initial(cfg);
    let mut g = Graph {
        states: vec![init.clone()],
        parent: vec![(
            0,
            Action {
                proc: 0,
                step: Step::Start,
                note: 0,
            },
        )],
        index: HashTable::new(),
    };
    g.index.insert_unique(hash_of(&init), 0, |_| 0);
    let mut dist: Vec<u32> = vec![0];
    let mut transitions = 0u64;
    let mut bad = None;
    let mut succ = Vec::new();
    let mut i = 0usize;
    while i < g.states.len() {
        let s = g.states[i].clone();
        s.successors(cfg, None, &mut succ);
        transitions += succ.len() as u64;
        for (a, t) in succ.drain(..) {
            let h = hash_of(&t);
            let states = &g.states;
            let entry = g.index.entry(
                h,
                |&k| states[k as usize] == t,
                |&k| hash_of(&states[k as usize]),
            );
            let hashbrown::hash_table::Entry::Vacant(entry) = entry else {
                continue;
            };
            let j = g.states.len() as u32;
            entry.insert(j);
            assert!(
                g.states.len() < cfg.max_states,
                "state cap exceeded: more than {} states; this configuration does not fit \
                 (raise Config::max_states only with the memory to spare)",
                cfg.max_states
            );
            let two = t.violates(cfg);
            g.states.push(t);
            g.parent.push((i as u32, a));
            dist.push(dist[i] + 1);
            if two && bad.is_none() {
                bad = Some(j);
                if stop {
                    let depth = dist[j as usize] as usize;
                    return (g, transitions, depth, bad);
                }
            }
        }
        i += 1;
    }
    let depth = dist.iter().copied().max().unwrap_or(0) as usize;
    (g, transitions, depth, bad)
}

/// A trace of the reduced graph as one run of the un-reduced system: each
/// step's state is a renaming of the representative, chosen so that the
/// slots keep their names from step to step.
fn concrete(cfg: &Config, trace: Trace) -> Trace {
    if !cfg.symmetry {
        return trace;
    }
    let perms = crate::model::symmetries(cfg);
    let plain = Config {
        symmetry: false,
        ..cfg.clone()
    };
    let mut cur = trace.initial.clone();
    let mut steps = Vec::new();
    let mut buf = Vec::new();
    for (_, next) in &trace.steps {
        cur.successors(&plain, None, &mut buf);
        let (a, t) = buf
            .drain(..)
            .find(|(_, t)| t.canonical(&perms) == *next)
            .expect("a reduced step is a renamed real step");
        steps.push((a, t.clone()));
        cur = t;
    }
    Trace {
        initial: trace.initial,
        steps,
    }
}

/// How a contender other than the one held back ends, in the held-back
/// check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It dies (kill -9): its entries stay, judged stale, or unjudgeable
    /// across a namespace boundary.
    Crashed,
    /// It is stopped for ever (SIGSTOP): alive, judged live and stopped.
    Stopped,
}

/// A contender held back for ever by entries that are not legitimate
/// blockers (see [`State::legitimately_blocked`]).
#[derive(Clone, Debug)]
pub struct HeldBack {
    /// How the state is reached.
    pub trace: Trace,
    /// The contender held back.
    pub proc: usize,
    /// How each other contender that was still running ends there.
    pub fates: Vec<(usize, Fate)>,
    /// The state they leave (the contender's solo run starts here).
    pub root: State,
    /// Its own steps from there to a state from which it can never hold.
    pub solo: Vec<(Action, State)>,
}

impl HeldBack {
    /// The state from which the contender can never hold.
    pub fn stuck(&self) -> &State {
        self.solo.last().map_or(&self.root, |(_, s)| s)
    }
}

impl fmt::Display for HeldBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.trace)?;
        for (q, fate) in &self.fates {
            writeln!(f, "      then {} is {fate:?}", slot_name(*q))?;
        }
        writeln!(f, "      -> {}", self.root)?;
        writeln!(f, "      {} alone:", slot_name(self.proc))?;
        for (i, (a, s)) in self.solo.iter().enumerate() {
            writeln!(f, "{:4}. {a}\n      -> {s}", i + 1)?;
        }
        writeln!(
            f,
            "      from here {} can never hold, and nothing but queue markers keeps it out",
            slot_name(self.proc)
        )
    }
}

/// The state where the other contenders that still run end as `fates` says
/// (per slot), and nothing crashes, stops, restarts or reboots any more.
/// What `p` running alone can see of a contender that no longer runs is its
/// entries and whether it is alive (stopped) or dead, so every such record
/// is reduced to that: one solo world per distinct view.
fn project(cfg: &Config, s: &State, p: usize, fates: &[Option<Fate>; MAX_PROCS]) -> State {
    let mut t = s.clone();
    for (q, fate) in fates.iter().enumerate() {
        match fate {
            Some(Fate::Crashed) => t.procs[q].alive = false,
            Some(Fate::Stopped) => t.procs[q].stopped = true,
            None => {}
        }
    }
    for q in 0..t.n as usize {
        let pr = t.procs[q];
        if q == p || (pr.alive && !pr.stopped) {
            continue;
        }
        let stopped = pr.alive && t.has_entries(q);
        t.procs[q] = Proc {
            alive: stopped,
            stopped,
            inc: pr.inc,
            ..Proc::default()
        };
    }
    t.crashes_left = 0;
    t.stops_left = 0;
    t.reboots_left = 0;
    t.normalize_for(cfg);
    t
}

/// Whether contender `p` of `s` runs and is not holding.
fn running(s: &State, p: usize) -> bool {
    let pr = &s.procs[p];
    pr.alive && !pr.stopped && !s.holding(p)
}

/// Every way the others still running in `s` can end (with `stops`, each
/// crashes or is stopped; without, each crashes).
fn all_fates(s: &State, p: usize, stops: bool) -> Vec<[Option<Fate>; MAX_PROCS]> {
    let others: Vec<usize> = (0..s.n as usize)
        .filter(|&q| q != p && s.procs[q].alive && !s.procs[q].stopped)
        .collect();
    let ways = if stops { 1u32 << others.len() } else { 1 };
    (0..ways)
        .map(|bits| {
            let mut f = [None; MAX_PROCS];
            for (k, &q) in others.iter().enumerate() {
                f[q] = Some(if bits >> k & 1 == 1 {
                    Fate::Stopped
                } else {
                    Fate::Crashed
                });
            }
            f
        })
        .collect()
}

/// Memo of the held-back check, per contender running alone: states whose
/// every solo future is known to be fine, with whether the contender can
/// still come to hold from there.
type SoloMemo = Map<State, bool>;

/// `p` runs alone from `root`. Every state it can reach must be one from
/// which it can still come to hold, or one that legitimately keeps it out.
/// Returns the path to the first state that is neither.
fn solo(
    cfg: &Config,
    root: &State,
    p: usize,
    legit: bool,
    memo: Option<&mut SoloMemo>,
) -> Option<Vec<(Action, State)>> {
    let mut seen: Map<State, u32> = Map::default();
    let mut order = vec![root.clone()];
    let mut parent: Vec<(u32, Option<Action>)> = vec![(u32::MAX, None)];
    let mut preds: Vec<Vec<u32>> = vec![Vec::new()];
    let mut can: Vec<bool> = vec![false];
    seen.insert(root.clone(), 0);
    let mut succ = Vec::new();
    let mut k = 0;
    while k < order.len() {
        if order[k].holding(p) {
            can[k] = true;
            k += 1;
            continue;
        }
        order[k].successors(cfg, Some(p), &mut succ);
        for (a, t) in succ.drain(..) {
            if let Some(m) = memo.as_deref() {
                if let Some(&ok) = m.get(&t) {
                    can[k] |= ok;
                    continue;
                }
            }
            let j = match seen.get(&t) {
                Some(&j) => j,
                None => {
                    let j = order.len() as u32;
                    seen.insert(t.clone(), j);
                    order.push(t);
                    parent.push((k as u32, Some(a)));
                    preds.push(Vec::new());
                    can.push(false);
                    j
                }
            };
            preds[j as usize].push(k as u32);
        }
        k += 1;
    }
    // Backwards from the states that hold (or reach a known one that can).
    let mut work: Vec<u32> = (0..order.len() as u32)
        .filter(|&i| can[i as usize])
        .collect();
    while let Some(i) = work.pop() {
        for &q in &preds[i as usize] {
            if !can[q as usize] {
                can[q as usize] = true;
                work.push(q);
            }
        }
    }
    let bad =
        (0..order.len()).find(|&i| !(can[i] || legit && order[i].legitimately_blocked(cfg, p)));
    if let Some(mut i) = bad {
        let mut path = Vec::new();
        while let (pi, Some(a)) = parent[i] {
            path.push((a, order[i].clone()));
            i = pi as usize;
        }
        path.reverse();
        return Some(path);
    }
    if let Some(m) = memo {
        for (t, ok) in order.into_iter().zip(can) {
            m.insert(t, ok);
        }
    }
    None
}

/// The held-back property: from every reachable state, for every contender
/// that runs and does not hold, and for every way the other running
/// contenders can end (each crashes or is stopped for ever), the contender
/// running alone can never reach a state from which it cannot come to hold
/// unless what keeps it out is a legitimate blocker.
fn find_held_back(cfg: &Config, g: &Graph, checks: &Checks) -> (Option<HeldBack>, usize) {
    let legit = checks.legitimate_blockers;
    let mut memo: Vec<SoloMemo> = (0..MAX_PROCS).map(|_| SoloMemo::default()).collect();
    let mut searches = 0;
    for (i, s) in g.states.iter().enumerate() {
        for (p, memo) in memo.iter_mut().enumerate().take(s.n as usize) {
            if !running(s, p) {
                continue;
            }
            for fates in all_fates(s, p, checks.stopped_fates) {
                let root = project(cfg, s, p, &fates);
                if memo.contains_key(&root) {
                    continue;
                }
                searches += 1;
                if solo(cfg, &root, p, legit, Some(memo)).is_some() {
                    return (
                        Some(held_back(cfg, g, i as u32, p, &fates, legit)),
                        searches,
                    );
                }
            }
        }
    }
    (None, searches)
}

/// The report of a held-back contender, in the slot names of one real run
/// (a reduced search finds a renaming of it).
fn held_back(
    cfg: &Config,
    g: &Graph,
    i: u32,
    p: usize,
    fates: &[Option<Fate>; MAX_PROCS],
    legit: bool,
) -> HeldBack {
    let trace = concrete(cfg, g.trace_to(i));
    let last = trace
        .steps
        .last()
        .map_or(trace.initial.clone(), |(_, s)| s.clone());
    let rep = &g.states[i as usize];
    let mut perms = crate::model::symmetries(cfg);
    perms.push([0, 1, 2]);
    let perm = perms
        .into_iter()
        .find(|perm| last.permuted(perm) == *rep)
        .expect("the real run ends in a renaming of the representative");
    let pc = (0..MAX_PROCS)
        .find(|&q| perm[q] as usize == p)
        .expect("a slot");
    let mut fc = [None; MAX_PROCS];
    for q in 0..MAX_PROCS {
        fc[q] = fates[perm[q] as usize];
    }
    let root = project(cfg, &last, pc, &fc);
    let plain = Config {
        symmetry: false,
        ..cfg.clone()
    };
    let solo = solo(&plain, &root, pc, legit, None).expect("the renamed run is held back too");
    HeldBack {
        trace,
        proc: pc,
        fates: (0..MAX_PROCS)
            .filter_map(|q| fc[q].map(|f| (q, f)))
            .collect(),
        root,
        solo,
    }
}

/// Whether state `s` belongs to the subgraph searched: without a victim, no
/// one holds the lock; with one, that contender is alive and waiting.
fn in_subgraph(s: &State, victim: Option<usize>) -> bool {
    match victim {
        None => s.holders() == 0,
        Some(p) => s.procs[p].alive && s.procs[p].pc != Pc::Idle && !s.holding(p),
    }
}

/// Edges of the subgraph: both ends in it, and no crash, stop, reboot,
/// restart or giving up (those are bounded, and a waiter that gives up is
/// not starved by the protocol).
fn quiet_successors(
    cfg: &Config,
    g: &Graph,
    s: &State,
    victim: Option<usize>,
    buf: &mut Vec<(Action, State)>,
) -> Vec<(u32, u8)> {
    if !in_subgraph(s, victim) {
        return Vec::new();
    }
    s.successors(cfg, None, buf);
    buf.drain(..)
        .filter(|(a, t)| !disturbs(a) && in_subgraph(t, victim))
        .map(|(a, t)| {
            // Reading one more entry is not progress: listings are finite
            // (a cycle in which a contender only ever reads, while others
            // keep adding entries ahead of its cursor, is not fair).
            let reads = matches!(a.step, Step::Read(_));
            (g.at(&t), a.proc | if reads { READ } else { 0 })
        })
        .collect()
}

/// Steps that are not part of a fair cycle: bounded events of the world,
/// and giving up.
fn disturbs(a: &Action) -> bool {
    matches!(
        a.step,
        Step::Crash | Step::Restart | Step::GiveUp | Step::Stop | Step::Reboot
    )
}

/// Marks an edge of [`quiet_successors`] that only reads one entry.
const READ: u8 = 0x80;

/// A Tarjan frame: a node, its successors (state, contender) and the next one to visit.
type Frame = (u32, Vec<(u32, u8)>, usize);

/// Looks for a fair cycle without progress: without a victim, one in which
/// nobody ever holds the lock; with one, one in which that contender waits
/// throughout and never holds while the others may.
pub fn find_livelock(cfg: &Config, g: &Graph, victim: Option<usize>) -> Option<Livelock> {
    let n = g.states.len();
    const UNSEEN: u32 = u32::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![UNSEEN; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut next = 0u32;
    let mut ncomp = 0u32;
    let mut buf = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN || !in_subgraph(&g.states[root], victim) {
            continue;
        }
        // Iterative Tarjan: frames of (node, successors, position); `open`
        // is the node to enter next.
        let mut frames: Vec<Frame> = Vec::new();
        let mut open = Some(root);
        loop {
            if let Some(w) = open.take() {
                let succ = quiet_successors(cfg, g, &g.states[w], victim, &mut buf);
                index[w] = next;
                low[w] = next;
                next += 1;
                stack.push(w as u32);
                on_stack[w] = true;
                frames.push((w as u32, succ, 0));
            }
            let Some(frame) = frames.last_mut() else {
                break;
            };
            let v = frame.0 as usize;
            if frame.2 < frame.1.len() {
                let w = frame.1[frame.2].0 as usize;
                frame.2 += 1;
                if index[w] == UNSEEN {
                    open = Some(w);
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(parent) = frames.last() {
                let u = parent.0 as usize;
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut members = Vec::new();
                loop {
                    let w = stack.pop().expect("Tarjan stack") as usize;
                    on_stack[w] = false;
                    comp[w] = ncomp;
                    members.push(w as u32);
                    if w == v {
                        break;
                    }
                }
                if let Some(l) = fair_cycle(cfg, g, &comp, ncomp, &members, victim, &mut buf) {
                    return Some(l);
                }
                ncomp += 1;
            }
        }
    }
    None
}

/// The shortest path inside component `c` from `from` ending with a step
/// `a` into `w` for which `last(a, w)` holds (at least one step).
#[allow(clippy::too_many_arguments)]
fn walk(
    cfg: &Config,
    g: &Graph,
    comp: &[u32],
    c: u32,
    victim: Option<usize>,
    from: u32,
    buf: &mut Vec<(Action, State)>,
    last: impl Fn(&Action, u32) -> bool,
) -> (Vec<Action>, u32) {
    let mut prev: Map<u32, (u32, Action)> = Map::default();
    let mut queue = VecDeque::from([from]);
    let mut seen = Map::default();
    seen.insert(from, ());
    while let Some(v) = queue.pop_front() {
        g.states[v as usize].successors(cfg, None, buf);
        for (a, t) in std::mem::take(buf) {
            if disturbs(&a) {
                continue;
            }
            let w = g.at(&t);
            if w == v || comp[w as usize] != c || !in_subgraph(&t, victim) {
                continue;
            }
            if last(&a, w) {
                let mut path = vec![a];
                let mut u = v;
                while u != from {
                    let (p, b) = prev[&u];
                    path.push(b);
                    u = p;
                }
                path.reverse();
                return (path, w);
            }
            if seen.insert(w, ()).is_none() {
                prev.insert(w, (v, a));
                queue.push_back(w);
            }
        }
    }
    unreachable!("a strongly connected component reaches all of itself")
}

/// Whether component `c` holds a fair cycle: every contender that is
/// contending somewhere in it takes a (state-changing) step inside it other
/// than reading one more entry of a listing.
fn fair_cycle(
    cfg: &Config,
    g: &Graph,
    comp: &[u32],
    c: u32,
    members: &[u32],
    victim: Option<usize>,
    buf: &mut Vec<(Action, State)>,
) -> Option<Livelock> {
    if members.len() < 2 {
        return None;
    }
    let mut moving = 0u32;
    let mut contending = 0u32;
    for &m in members {
        let s = &g.states[m as usize];
        for (p, pr) in s.procs.iter().enumerate().take(s.n as usize) {
            if pr.alive && !pr.stopped && pr.pc != Pc::Idle {
                contending |= 1 << p;
            }
        }
        for (t, p) in quiet_successors(cfg, g, s, victim, buf) {
            if t != m && comp[t as usize] == c && p & READ == 0 {
                moving |= 1 << p;
            }
        }
    }
    if contending == 0 || contending & !moving != 0 {
        return None;
    }
    // A fair closed walk through the first member, for the report: for each
    // contender in turn, the shortest way to one of its moves inside the
    // component, then back to the start.
    let root = members[0];
    let mut cycle = Vec::new();
    let mut at = root;
    for p in 0..MAX_PROCS {
        if moving >> p & 1 == 0 {
            continue;
        }
        let (path, to) = walk(cfg, g, comp, c, victim, at, buf, |a, _| {
            a.proc as usize == p && !matches!(a.step, Step::Read(_))
        });
        cycle.extend(path);
        at = to;
    }
    let (path, _) = walk(cfg, g, comp, c, victim, at, buf, |_, w| w == root);
    cycle.extend(path);
    Some(Livelock {
        trace: g.trace_to(root),
        cycle,
        component: members.len(),
    })
}
