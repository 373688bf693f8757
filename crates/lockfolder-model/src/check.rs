//! The explorer: breadth-first search over every reachable state with state
//! hashing, then the two liveness questions on the graph it found.
//!
//! * **Safety**: no reachable state has two contenders in the critical
//!   section. Checked on every state as it is found; BFS makes the first
//!   counterexample a shortest one.
//! * **No wedge**: from every reachable state and for every live contender,
//!   the state where all the *other* contenders crash (leaving their entries)
//!   has a path, taken by that contender alone, to it holding the lock.
//! * **Livelock**: is there a fair cycle in which nobody holds the lock, nobody
//!   crashes, restarts or gives up, every contender that is contending keeps
//!   taking steps, and none ever enters? Found with Tarjan's strongly
//!   connected components on the no-holder part of the graph.

use crate::model::{Action, Config, Pc, State, Step};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// A small multiplicative hasher (the states are short byte strings; SipHash
/// would dominate the run time).
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
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

/// A wedge: a state from which one contender, left alone, can never enter.
#[derive(Clone, Debug)]
pub struct Wedge {
    /// How the state is reached.
    pub trace: Trace,
    /// The contender that is stuck.
    pub proc: usize,
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
    /// Reachable states (all of them, unless a safety violation stopped the
    /// search early).
    pub states: usize,
    /// Transitions explored.
    pub transitions: u64,
    /// Length of the longest shortest path.
    pub depth: usize,
    /// The most contenders holding at once in any state found (shows that
    /// the limits are reached, so that their checks are not vacuous).
    pub max_holders: usize,
    /// First state that breaks safety (two holders of an exclusive lock, a
    /// writer with a reader, more than N holders), if any.
    pub two_holders: Option<Trace>,
    /// First wedge found, if checked and any.
    pub wedge: Option<Wedge>,
    /// Projected states whose solo search was run for the wedge check.
    pub wedge_checked: usize,
    /// A livelock, if checked and any.
    pub livelock: Option<Livelock>,
    /// A fair cycle in which a contender of ours waits forever while others
    /// may enter (starvation), if checked and any.
    pub starvation: Option<Livelock>,
    /// Whether the livelock and starvation questions were asked.
    pub livelock_checked: bool,
    /// Wall-clock time of the whole check.
    pub elapsed: Duration,
    /// Of which: the search, the wedge check, the livelock check.
    pub phases: [Duration; 3],
}

/// Which properties to check.
#[derive(Clone, Copy, Debug)]
pub struct Checks {
    /// Check the no-wedge property (after a complete safe search).
    pub wedge: bool,
    /// Look for livelocks (after a complete safe search).
    pub livelock: bool,
    /// Stop at the first safety violation.
    pub stop_on_violation: bool,
}

impl Checks {
    /// Everything.
    pub fn all() -> Checks {
        Checks {
            wedge: true,
            livelock: true,
            stop_on_violation: true,
        }
    }
    /// Safety only, stopping at the first counterexample (for mutants).
    pub fn safety() -> Checks {
        Checks {
            wedge: false,
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
    index: Map<State, u32>,
}

impl Graph {
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
        wedge: None,
        wedge_checked: 0,
        livelock: None,
        starvation: None,
        livelock_checked: false,
        elapsed: Duration::ZERO,
        phases: [start.elapsed(), Duration::ZERO, Duration::ZERO],
    };
    if report.two_holders.is_none() {
        if checks.wedge {
            let t = Instant::now();
            let (w, n) = find_wedge(cfg, &graph);
            report.wedge = w;
            report.wedge_checked = n;
            report.phases[1] = t.elapsed();
        }
        // On the reduced graph a cycle may end in a renaming of where it
        // began, which the fairness test cannot follow: liveness beyond
        // no-wedge is checked on un-reduced graphs only.
        if checks.livelock && !cfg.symmetry {
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
            },
        )],
        index: Map::default(),
    };
    g.index.insert(init, 0);
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
            if g.index.contains_key(&t) {
                continue;
            }
            let j = g.states.len() as u32;
            assert!(
                g.states.len() < cfg.max_states,
                "state cap exceeded: more than {} states; this configuration does not fit \
                 (raise Config::max_states only with the memory to spare)",
                cfg.max_states
            );
            let two = t.violates(cfg);
            g.index.insert(t.clone(), j);
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

/// The state where everyone but `p` has crashed (their entries stay) and no
/// more crashes or restarts happen.
fn alone(s: &State, p: usize) -> State {
    let mut t = s.clone();
    for (q, pr) in t.procs.iter_mut().enumerate().take(s.n as usize) {
        if q != p && pr.alive {
            *pr = crate::model::Proc {
                inc: pr.inc,
                ..Default::default()
            };
        }
    }
    t.crashes_left = 0;
    t
}

fn find_wedge(cfg: &Config, g: &Graph) -> (Option<Wedge>, usize) {
    // Memo of projected states: can `p` (the only live one) still enter?
    let mut memo: Map<(State, u8), bool> = Map::default();
    let mut succ = Vec::new();
    let mut searches = 0;
    for (i, s) in g.states.iter().enumerate() {
        for p in 0..s.n as usize {
            let pr = &s.procs[p];
            if !pr.alive || pr.pc == Pc::Held {
                continue;
            }
            let root = alone(s, p);
            if let Some(ok) = memo.get(&(root.clone(), p as u8)) {
                if !ok {
                    return (
                        Some(Wedge {
                            trace: g.trace_to(i as u32),
                            proc: p,
                        }),
                        searches,
                    );
                }
                continue;
            }
            searches += 1;
            // Solo BFS, remembering parents so that a success marks the
            // whole path.
            let mut seen: Map<State, u32> = Map::default();
            let mut order = vec![root.clone()];
            let mut parent = vec![u32::MAX];
            seen.insert(root.clone(), 0);
            let mut found = None;
            let mut k = 0;
            while k < order.len() {
                if order[k].procs[p].pc == Pc::Held
                    || memo.get(&(order[k].clone(), p as u8)) == Some(&true)
                {
                    found = Some(k);
                    break;
                }
                order[k].successors(cfg, Some(p), &mut succ);
                for (a, t) in succ.drain(..) {
                    if a.step == Step::GiveUp || seen.contains_key(&t) {
                        continue;
                    }
                    seen.insert(t.clone(), order.len() as u32);
                    order.push(t);
                    parent.push(k as u32);
                }
                k += 1;
            }
            match found {
                Some(mut k) => {
                    while k != u32::MAX as usize {
                        memo.insert((order[k].clone(), p as u8), true);
                        k = parent[k] as usize;
                    }
                }
                None => {
                    for t in order {
                        memo.insert((t, p as u8), false);
                    }
                    return (
                        Some(Wedge {
                            trace: g.trace_to(i as u32),
                            proc: p,
                        }),
                        searches,
                    );
                }
            }
        }
    }
    (None, searches)
}

/// Whether state `s` belongs to the subgraph searched: without a victim, no
/// one holds the lock; with one, that contender is alive and waiting.
fn in_subgraph(s: &State, victim: Option<usize>) -> bool {
    match victim {
        None => s.holders() == 0,
        Some(p) => s.procs[p].alive && !matches!(s.procs[p].pc, Pc::Idle | Pc::Held),
    }
}

/// Edges of the subgraph: both ends in it, and no crash, restart or giving
/// up (crashes and restarts are bounded, and a waiter that gives up is not
/// starved by the protocol).
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
        .filter(|(a, t)| {
            !matches!(a.step, Step::Crash | Step::Restart | Step::GiveUp) && in_subgraph(t, victim)
        })
        .map(|(a, t)| {
            // Reading one more entry is not progress: listings are finite
            // (a cycle in which a contender only ever reads, while others
            // keep adding entries ahead of its cursor, is not fair).
            let reads = matches!(a.step, Step::Read(_) | Step::ReadWrongVerdict(_));
            (g.index[&t], a.proc | if reads { READ } else { 0 })
        })
        .collect()
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
        // Iterative Tarjan: frames of (node, successors, position).
        let mut frames: Vec<Frame> = Vec::new();
        let succ = quiet_successors(cfg, g, &g.states[root], victim, &mut buf);
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root as u32);
        on_stack[root] = true;
        frames.push((root as u32, succ, 0));
        while let Some(frame) = frames.last_mut() {
            let v = frame.0 as usize;
            if frame.2 < frame.1.len() {
                let w = frame.1[frame.2].0 as usize;
                frame.2 += 1;
                if index[w] == UNSEEN {
                    let succ = quiet_successors(cfg, g, &g.states[w], victim, &mut buf);
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w as u32);
                    on_stack[w] = true;
                    frames.push((w as u32, succ, 0));
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
            if pr.alive && pr.pc != Pc::Idle {
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
    // A cycle through the first member, for the report.
    let root = members[0];
    let mut prev: Map<u32, (u32, Action)> = Map::default();
    let mut queue = VecDeque::from([root]);
    let mut closing = None;
    'bfs: while let Some(v) = queue.pop_front() {
        g.states[v as usize].successors(cfg, None, buf);
        for (a, t) in std::mem::take(buf) {
            if matches!(a.step, Step::Crash | Step::Restart | Step::GiveUp) {
                continue;
            }
            let w = g.index[&t];
            if w == v || comp[w as usize] != c || !in_subgraph(&t, victim) {
                continue;
            }
            if w == root {
                closing = Some((v, a));
                break 'bfs;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(w) {
                e.insert((v, a));
                queue.push_back(w);
            }
        }
    }
    let mut cycle = Vec::new();
    if let Some((mut v, a)) = closing {
        cycle.push(a);
        while v != root {
            let (u, a) = prev[&v];
            cycle.push(a);
            v = u;
        }
        cycle.reverse();
    }
    Some(Livelock {
        trace: g.trace_to(root),
        cycle,
        component: members.len(),
    })
}
