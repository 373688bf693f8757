//! Fixtures for the rules' tests: a process table standing in for `/proc`
//! and the platforms' probes.

use super::*;
use std::collections::HashMap;

/// A process table standing in for `/proc`.
#[derive(Default)]
pub(crate) struct Table {
    pub here: HashMap<u32, Probe>,
    pub groups: Vec<u32>,
    pub all: Option<Vec<SeenProcess>>,
}

impl LinuxProcs for Table {
    fn probe(&self, pid: u32) -> Probe {
        self.here.get(&pid).copied().unwrap_or(Probe::Gone)
    }
    fn group_gone(&self, pgid: u32) -> bool {
        !self.groups.contains(&pgid)
    }
    fn all(&self) -> Option<Vec<SeenProcess>> {
        self.all.clone()
    }
}

impl PortableProcs for Table {
    fn probe(&self, pid: u32) -> Probe {
        self.here.get(&pid).copied().unwrap_or(Probe::Gone)
    }
    fn group_gone(&self, pgid: u32) -> bool {
        !self.groups.contains(&pgid)
    }
    /// Starts in the table are whole seconds here.
    fn created(&self, _pid: u32, start: u64) -> Option<i64> {
        i64::try_from(start).ok()
    }
}

pub(crate) const BOOT: &str = "0f6a0e2c-8e7d-4c1e-9a55-2b8c6e3f1d20";

pub(crate) fn local() -> LinuxLocal {
    LinuxLocal {
        host: "h".into(),
        machine_id: Some("m".into()),
        boot_id: BOOT.into(),
        boot_time: 1_700_000_000,
        pid_ns: 10,
        clk_tck: 100,
        offset_ticks: 0,
        tick_slack: false,
        sees_all: true,
        folder_local: true,
    }
}

pub(crate) fn owner(ticks: u64, ns: u64) -> LinuxOwner {
    LinuxOwner {
        boot_id: BOOT.into(),
        machine_id: Some("m".into()),
        boot_time: 1_700_000_000,
        pid_ns: ns,
        start_ticks: ticks,
        clk_tck: 100,
        tick_slack: false,
    }
}

pub(crate) fn alive(start: u64) -> Probe {
    Probe::Alive {
        start,
        state: RunState::Running,
    }
}
