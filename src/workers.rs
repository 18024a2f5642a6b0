//! `--workers auto`: how many targets may run at once, decided while the run goes on.
//!
//! The [`Controller`] is a pure decision function over [`Sample`]s (unit-tested below): it
//! grows the limit while the CPU and memory have room and throughput rises, goes back when the
//! CPU is saturated and a larger count finished no more, and shrinks at once when available
//! memory falls under its floor (a tenth of the memory the run may use, or what the next child
//! is likely to need, judged from the children's resident size so far). [`Auto`] is the part
//! the scheduler holds: it samples the machine ([`Probe`]: `sysinfo` for CPU and memory, a
//! cgroup's limit, `--max-memory`; the children's resident size from `/proc` on Linux,
//! `sysinfo` elsewhere) twice a second and logs each change with its reason.
//!
//! Throughput is judged by Little's law: targets a second = targets running / how long a
//! target takes. Both are measured for the targets that *started* at the current count, so a
//! change is judged only once the children it started have finished; a slow child makes for
//! slow, careful steps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::process::ProcessGroups;

/// `--workers`: a fixed count, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Fixed(usize),
    Auto,
}

/// Parses `--workers` (and `COVE_WORKERS`): a whole number from 1, or `auto`.
pub fn parse_workers(value: &str) -> Result<Workers, String> {
    if value.eq_ignore_ascii_case("auto") {
        return Ok(Workers::Auto);
    }
    match value.parse::<u32>() {
        Ok(0) => Err(format!(
            "`{value}` is zero; expected a whole number from 1, or `auto`"
        )),
        Ok(n) => Ok(Workers::Fixed(n as usize)),
        Err(_) => Err(format!(
            "`{value}` is not a count; expected a whole number from 1, or `auto`"
        )),
    }
}

/// What bounds `--workers auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoSettings {
    /// `--max-workers`, fitted to the open-file limit.
    pub cap: usize,
    /// `--max-memory`: the memory the run (cove and its children) may use, in bytes.
    pub max_memory: Option<u64>,
    /// `--max-assume-rate`, in credential calls a second.
    pub assume_rate: Option<f64>,
    /// How many targets share one credential call (the regions of an account).
    pub targets_per_call: usize,
}

/// The count `auto` starts at, before anything is known of the children.
pub const START: usize = 4;
/// Machine CPU use (0 to 1) at or above which the CPU counts as saturated.
const SATURATED: f64 = 0.9;
/// Under this CPU use, growth doubles; above, it adds a quarter.
const IDLE: f64 = 0.5;
/// A step must raise throughput by this factor to count as a gain.
const GAIN: f64 = 1.05;
/// Under a saturated CPU, growth goes on only when throughput rose nearly in proportion.
const SCALES: f64 = 0.8;
/// How long after a step that gave nothing no growth is tried, in measurements.
const COOL_DOWN: f64 = 5.0;

/// One look at the machine, taken by [`Probe`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// The whole machine's CPU use, 0 to 1.
    pub cpu_busy: f64,
    /// The memory the run can count on: the machine's, a cgroup's limit, or `--max-memory`,
    /// the lowest.
    pub mem_total: u64,
    /// What of it is still available.
    pub mem_available: u64,
    /// The resident size of each running child (with its descendants).
    pub children_rss: Vec<u64>,
    /// The largest resident size of any child that ended (`getrusage`).
    pub ended_peak_rss: u64,
}

/// A change of the limit, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub from: usize,
    pub to: usize,
    pub reason: String,
}

/// What is measured at one count: the targets that started at it.
#[derive(Debug, Clone, Default)]
struct Epoch {
    start: f64,
    samples: u32,
    running_sum: f64,
    cpu_sum: f64,
    saturated: u32,
    /// Every sample found all slots busy and targets waiting.
    full: bool,
    finished: u32,
    duration_sum: f64,
}

/// The throughput measured at a count.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    level: usize,
    rate: f64,
}

/// The decision function of `--workers auto`; time is seconds since the run started.
#[derive(Debug)]
pub struct Controller {
    settings: AutoSettings,
    limit: usize,
    epoch: Epoch,
    /// The throughput at the count before the last growth, to judge that growth by.
    below: Option<Measured>,
    cool_until: f64,
    /// What the next child is likely to need: the largest resident size seen.
    per_child: u64,
    /// When the first child started; its size counts as known a second later.
    first_start: Option<f64>,
    any_finished: bool,
    /// The mean duration of recent targets (seconds), for the `--max-assume-rate` bound.
    mean_duration: f64,
}

impl Controller {
    pub fn new(settings: AutoSettings) -> Self {
        Controller {
            limit: START.min(settings.cap).max(1),
            settings,
            epoch: Epoch {
                full: true,
                ..Epoch::default()
            },
            below: None,
            cool_until: 0.0,
            per_child: 0,
            first_start: None,
            any_finished: false,
            mean_duration: 0.0,
        }
    }

    /// How many targets may run now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A target started at `now`.
    pub fn started(&mut self, now: f64) {
        self.first_start.get_or_insert(now);
    }

    /// A target that took `duration` seconds finished at `now`.
    pub fn finished(&mut self, now: f64, duration: f64) {
        self.any_finished = true;
        self.mean_duration = if self.mean_duration == 0.0 {
            duration
        } else {
            0.9 * self.mean_duration + 0.1 * duration
        };
        if now - duration >= self.epoch.start - 1e-9 {
            self.epoch.finished += 1;
            self.epoch.duration_sum += duration;
        }
    }

    /// Whether the children's size is known well enough to plan memory by.
    fn size_known(&self, now: f64) -> bool {
        self.any_finished || self.first_start.is_some_and(|t| now - t >= 1.0)
    }

    /// Takes one sample with `running` targets running (and whether more wait), and decides.
    pub fn decide(
        &mut self,
        now: f64,
        sample: &Sample,
        running: usize,
        waiting: bool,
    ) -> Option<Change> {
        let largest_running = sample.children_rss.iter().copied().max().unwrap_or(0);
        self.per_child = self
            .per_child
            .max(sample.ended_peak_rss)
            .max(largest_running);
        let e = &mut self.epoch;
        e.samples += 1;
        e.running_sum += running as f64;
        e.cpu_sum += sample.cpu_busy;
        e.saturated += u32::from(sample.cpu_busy >= SATURATED);
        // A slot or two empty at the moment of a sample (a child just ended) still counts.
        e.full &= running + self.limit / 8 >= self.limit && waiting;
        let (headroom, room) = self.memory_room(now, sample);
        if let Some(change) = self.memory_guard(now, sample, headroom, running) {
            return Some(change);
        }
        self.judge(now, room)
    }

    /// What memory is left over the floor once the running children reach the size the
    /// largest reached (negative: under the floor), and how many more children fit in it.
    fn memory_room(&self, now: f64, sample: &Sample) -> (i128, usize) {
        let per_child = self.per_child;
        let floor = (sample.mem_total / 10).max(per_child);
        let growth: u64 = sample
            .children_rss
            .iter()
            .map(|rss| per_child.saturating_sub(*rss))
            .sum();
        let headroom = sample.mem_available as i128 - floor as i128 - growth as i128;
        let room = if !self.size_known(now) || headroom <= 0 {
            0
        } else {
            (headroom / per_child.max(1) as i128).min(usize::MAX as i128) as usize
        };
        (headroom, room)
    }

    /// Under the floor: fewer at once, by as many children as the shortfall holds.
    fn memory_guard(
        &mut self,
        now: f64,
        sample: &Sample,
        headroom: i128,
        running: usize,
    ) -> Option<Change> {
        if headroom >= 0 {
            return None;
        }
        let per_child = self.per_child.max(1) as i128;
        let over = ((-headroom + per_child - 1) / per_child) as usize;
        let to = running.saturating_sub(over).clamp(1, self.limit);
        if to >= self.limit {
            return None;
        }
        let floor = (sample.mem_total / 10).max(self.per_child);
        let reason = format!(
            "available memory {} is under the floor {} (a tenth of {}, or the {} the largest child used) once the running children grow to that size",
            mib(sample.mem_available),
            mib(floor),
            mib(sample.mem_total),
            mib(self.per_child)
        );
        self.below = None;
        Some(self.set(now, to, reason))
    }

    /// At the end of a measurement: back to the count before when the last step gave
    /// nothing, else grow when there is room and work.
    fn judge(&mut self, now: f64, room: usize) -> Option<Change> {
        let e = &self.epoch;
        let needed = (self.limit as u32 / 2).clamp(1, 8);
        if now - e.start < 1.0 || e.finished < needed || e.samples < 2 {
            return None;
        }
        let running = e.running_sum / f64::from(e.samples);
        let duration = (e.duration_sum / f64::from(e.finished)).max(1e-3);
        let here = Measured {
            level: self.limit,
            rate: running / duration,
        };
        let cpu = e.cpu_sum / f64::from(e.samples);
        let saturated = e.saturated * 2 >= e.samples;
        if !e.full {
            // Slots stood empty (the run's tail, or targets slow to arrive): no measure of
            // this count.
            self.epoch = self.fresh_epoch(now);
            return None;
        }
        let gain = self
            .below
            .filter(|b| b.level < here.level)
            .map(|b| here.rate / b.rate.max(1e-9));
        if let (Some(below), Some(gain)) = (self.below, gain)
            && gain < GAIN
        {
            let why = if saturated {
                format!("the CPU is saturated ({:.0}% busy)", cpu * 100.0)
            } else {
                "something else bounds throughput (AWS throttling, --max-assume-rate)".to_owned()
            };
            let reason = format!(
                "{} at once finished no more than {} ({:.2} vs {:.2} targets/s): {why}",
                here.level, below.level, here.rate, below.rate
            );
            self.below = None;
            self.cool_until = now + COOL_DOWN * (now - self.epoch.start);
            return Some(self.set(now, below.level, reason));
        }
        let scales =
            gain.map(|g| g / (here.level as f64 / self.below.map_or(1, |b| b.level) as f64));
        let may_grow = now >= self.cool_until && (!saturated || scales.is_none_or(|s| s >= SCALES));
        let to = if may_grow {
            self.grown(cpu, saturated, scales, room)
        } else {
            self.limit
        };
        if to <= self.limit {
            self.epoch = self.fresh_epoch(now);
            return None;
        }
        let reason = format!(
            "{:.2} targets/s at {}{}, CPU {:.0}% busy, memory for {} more",
            here.rate,
            here.level,
            gain.map(|g| format!(
                " ({:+.0}% over {})",
                (g - 1.0) * 100.0,
                self.below.map_or(0, |b| b.level)
            ))
            .unwrap_or_default(),
            cpu * 100.0,
            if room == usize::MAX {
                "many".to_owned()
            } else {
                room.to_string()
            }
        );
        self.below = Some(here);
        Some(self.set(now, to, reason))
    }

    /// The next count up: double while the CPU is mostly idle or throughput scales in
    /// proportion, else a quarter more; within memory, the cap and the assume rate.
    fn grown(&self, cpu: f64, saturated: bool, scales: Option<f64>, room: usize) -> usize {
        let doubles = (cpu < IDLE && !saturated) || scales.is_some_and(|s| s >= SCALES);
        // Else a quarter more (under a busy CPU, a probe judged before going on).
        let step = if doubles {
            self.limit
        } else {
            (self.limit / 4).max(1)
        };
        let mut to = self
            .limit
            .saturating_add(step.min(room))
            .min(self.settings.cap);
        if let Some(rate) = self.settings.assume_rate
            && self.mean_duration > 0.0
        {
            // Credentials arrive at most `rate` a second, each good for `targets_per_call`
            // targets: more workers than twice what that keeps busy only wait.
            let busy = rate * self.settings.targets_per_call as f64 * self.mean_duration;
            to = to.min(((2.0 * busy).round() as usize).max(self.limit));
        }
        to
    }

    fn fresh_epoch(&self, now: f64) -> Epoch {
        Epoch {
            start: now,
            full: true,
            ..Epoch::default()
        }
    }

    fn set(&mut self, now: f64, to: usize, reason: String) -> Change {
        let change = Change {
            from: self.limit,
            to,
            reason,
        };
        self.limit = to;
        self.epoch = self.fresh_epoch(now);
        change
    }
}

/// `n` bytes in MiB, for a log line.
fn mib(n: u64) -> String {
    format!("{} MiB", n >> 20)
}

/// Reads the machine: CPU use and available memory through `sysinfo` (a cgroup's memory limit
/// when it is lower than the machine's), `--max-memory`, and the resident size of each running
/// child with its descendants.
pub struct Probe {
    system: sysinfo::System,
    max_memory: Option<u64>,
}

impl Probe {
    pub fn new(max_memory: Option<u64>) -> Self {
        let mut system = sysinfo::System::new();
        // CPU use is a difference between two readings: this is the first.
        system.refresh_cpu_usage();
        Probe { system, max_memory }
    }

    /// One sample, with the children whose process groups are `groups`.
    pub fn sample(&mut self, groups: &[i32]) -> Sample {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let cpu_busy = f64::from(self.system.global_cpu_usage() / 100.0).clamp(0.0, 1.0);
        let mut mem_total = self.system.total_memory();
        let mut mem_available = self.system.available_memory();
        if let Some(cgroup) = self.system.cgroup_limits()
            && cgroup.total_memory > 0
            && cgroup.total_memory < mem_total
        {
            mem_total = cgroup.total_memory;
            mem_available = mem_available.min(cgroup.free_memory);
        }
        let children_rss: Vec<u64> = groups.iter().map(|pid| self.tree_rss(*pid)).collect();
        if let Some(budget) = self.max_memory {
            let used = self.own_rss() + children_rss.iter().sum::<u64>();
            mem_total = mem_total.min(budget);
            mem_available = mem_available.min(budget.saturating_sub(used));
        }
        Sample {
            cpu_busy,
            mem_total,
            mem_available,
            children_rss,
            ended_peak_rss: ended_peak_rss(),
        }
    }

    /// The resident size of `pid` and its descendants (a shell's children count).
    fn tree_rss(&mut self, pid: i32) -> u64 {
        if cfg!(target_os = "linux") {
            proc_tree_rss(pid)
        } else {
            self.sysinfo_rss(pid)
        }
    }

    fn own_rss(&mut self) -> u64 {
        if cfg!(target_os = "linux") {
            proc_rss("self")
        } else {
            self.sysinfo_rss(std::process::id() as i32)
        }
    }

    /// Where there is no `/proc`: the process alone, through `sysinfo`.
    fn sysinfo_rss(&mut self, pid: i32) -> u64 {
        use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate};
        let pid = Pid::from_u32(pid as u32);
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        self.system.process(pid).map_or(0, sysinfo::Process::memory)
    }
}

/// The resident size of a process from `/proc/<pid>/statm` (its second field, in pages), in
/// bytes; 0 when the process is gone. Far cheaper than `status`.
fn proc_rss(pid: &str) -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let page = *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(4096)
    });
    let mut buf = [0u8; 128];
    let Ok(n) = std::fs::File::open(format!("/proc/{pid}/statm"))
        .and_then(|mut f| std::io::Read::read(&mut f, &mut buf))
    else {
        return 0;
    };
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|pages| pages.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// A child's resident size with its descendants' (through `/proc/<pid>/task/<pid>/children`),
/// at most 64 processes deep and wide, so that a fork bomb costs a bounded read.
fn proc_tree_rss(pid: i32) -> u64 {
    let mut total = 0;
    let mut todo = vec![pid];
    let mut seen = 0;
    while let Some(pid) = todo.pop() {
        seen += 1;
        if seen > 64 {
            break;
        }
        total += proc_rss(&pid.to_string());
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            todo.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
    }
    total
}

/// The largest resident size any ended child (or descendant it waited for) reached, in bytes.
fn ended_peak_rss() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_CHILDREN) else {
        return 0;
    };
    let max = u64::try_from(usage.max_rss()).unwrap_or(0);
    // Kilobytes on Linux, bytes on macOS.
    if cfg!(target_os = "macos") {
        max
    } else {
        max << 10
    }
}

/// How often `auto` samples the machine: eight times in a target's life, within these bounds,
/// so that a long child does not pay for many samples (each costs a few hundred microseconds
/// and about 20 more per running child).
pub const SAMPLE_EVERY: (Duration, Duration) =
    (Duration::from_millis(500), Duration::from_secs(10));

/// What the scheduler holds with `--workers auto`: the controller, the probe, the clock.
pub struct Auto {
    controller: Controller,
    probe: Probe,
    groups: Arc<ProcessGroups>,
    started: Instant,
    next: tokio::time::Instant,
    announced: bool,
}

impl Auto {
    pub fn new(settings: AutoSettings, groups: Arc<ProcessGroups>) -> Self {
        Auto {
            controller: Controller::new(settings),
            probe: Probe::new(settings.max_memory),
            groups,
            started: Instant::now(),
            // The first sample once the first children run, not before they start.
            next: tokio::time::Instant::now() + SAMPLE_EVERY.0,
            announced: false,
        }
    }

    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn limit(&self) -> usize {
        self.controller.limit()
    }

    pub fn started(&mut self) {
        let now = self.now();
        self.controller.started(now);
    }

    pub fn finished(&mut self, duration_ms: u64) {
        let now = self.now();
        self.controller.finished(now, duration_ms as f64 / 1000.0);
    }

    /// Waits for the next sample's time.
    pub async fn tick(&mut self) {
        tokio::time::sleep_until(self.next).await;
    }

    /// Samples the machine and decides; returns the limit when it changed (or on the first
    /// sample, so the display can show it), and logs each change with its reason.
    pub fn sample(&mut self, running: usize, waiting: bool) -> Option<usize> {
        let every = Duration::from_secs_f64(self.controller.mean_duration / 8.0);
        self.next = tokio::time::Instant::now() + every.clamp(SAMPLE_EVERY.0, SAMPLE_EVERY.1);
        let groups = self.groups.pgids();
        let sample = self.probe.sample(&groups);
        let now = self.now();
        let change = self.controller.decide(now, &sample, running, waiting);
        if let Some(c) = &change {
            tracing::info!(
                from = c.from,
                to = c.to,
                "workers: {} -> {}: {}",
                c.from,
                c.to,
                c.reason
            );
        }
        let first = !std::mem::replace(&mut self.announced, true);
        (change.is_some() || first).then(|| self.controller.limit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn settings(cap: usize) -> AutoSettings {
        AutoSettings {
            cap,
            max_memory: None,
            assume_rate: None,
            targets_per_call: 1,
        }
    }

    /// A machine to run the controller against: `cores` CPUs, `memory` bytes, targets whose
    /// children each take `cpu` seconds of CPU and `wait` seconds of waiting and hold `rss`
    /// bytes; `others` is the CPU (0 to 1) other programs use. Time runs in 10 ms steps and
    /// the controller samples every half second, as in a run.
    struct Machine {
        cores: f64,
        memory: u64,
        cpu: f64,
        wait: f64,
        rss: u64,
        others: f64,
    }

    /// What a simulated run saw.
    #[derive(Debug, Default)]
    struct Seen {
        peak_running: usize,
        peak_limit: usize,
        final_limit: usize,
        wall: f64,
        changes: Vec<Change>,
    }

    impl Machine {
        fn waiting(wait: f64) -> Machine {
            Machine {
                cores: 2.0,
                memory: 24 << 30,
                cpu: 0.0,
                wait,
                rss: 20 * MIB,
                others: 0.0,
            }
        }

        /// Runs `targets` targets under `controller`; each running child gets an equal share
        /// of the CPU left over.
        fn run(&self, controller: &mut Controller, targets: usize) -> Seen {
            const STEP: f64 = 0.01;
            let mut seen = Seen::default();
            // (started, cpu still needed, wait still left)
            let mut running: Vec<(f64, f64, f64)> = Vec::new();
            let (mut started, mut now, mut next_sample) = (0, 0.0, 0.5);
            while started < targets || !running.is_empty() {
                while running.len() < controller.limit() && started < targets {
                    running.push((now, self.cpu, self.wait));
                    controller.started(now);
                    started += 1;
                }
                seen.peak_running = seen.peak_running.max(running.len());
                if now >= next_sample {
                    next_sample += 0.5;
                    let computing = running.iter().filter(|r| r.1 > 0.0).count() as f64;
                    let busy = self.others + computing.min(self.cores) / self.cores;
                    let held = running.len() as u64 * self.rss;
                    let sample = Sample {
                        cpu_busy: busy.min(1.0),
                        mem_total: self.memory,
                        mem_available: self.memory.saturating_sub(held),
                        children_rss: vec![self.rss; running.len()],
                        ended_peak_rss: 0,
                    };
                    let waiting = started < targets;
                    if let Some(c) = controller.decide(now, &sample, running.len(), waiting) {
                        seen.changes.push(c);
                    }
                    seen.peak_limit = seen.peak_limit.max(controller.limit());
                }
                let computing = running.iter().filter(|r| r.1 > 0.0).count() as f64;
                let share = if computing > 0.0 {
                    (self.cores * (1.0 - self.others) / computing).min(1.0) * STEP
                } else {
                    0.0
                };
                for r in &mut running {
                    if r.1 > 0.0 {
                        r.1 -= share;
                    } else {
                        r.2 -= STEP;
                    }
                }
                now += STEP;
                running.retain(|r| {
                    let done = r.1 <= 0.0 && r.2 <= 0.0;
                    if done {
                        controller.finished(now, now - r.0);
                    }
                    !done
                });
                assert!(now < 10_000.0, "the simulated run never ends");
            }
            seen.final_limit = controller.limit();
            seen.wall = now;
            seen
        }
    }

    #[test]
    fn workers_are_a_count_from_one_or_auto() {
        assert_eq!(parse_workers("auto"), Ok(Workers::Auto));
        assert_eq!(parse_workers("AUTO"), Ok(Workers::Auto));
        assert_eq!(parse_workers("7"), Ok(Workers::Fixed(7)));
        assert!(parse_workers("0").unwrap_err().contains("`0` is zero"));
        assert!(parse_workers("-1").unwrap_err().contains("or `auto`"));
        assert!(parse_workers("automatic").is_err());
    }

    #[test]
    fn a_waiting_child_grows_the_count_to_the_cap() {
        let mut c = Controller::new(settings(256));
        let seen = Machine::waiting(2.0).run(&mut c, 1000);
        assert_eq!(seen.peak_limit, 256, "{:#?}", seen.changes);
        assert!(
            seen.changes.iter().all(|c| c.to > c.from),
            "{:#?}",
            seen.changes
        );
        // Today's default, 20 at once, takes 100 s; auto must be at least 4 times faster.
        assert!(
            seen.wall < 25.0,
            "took {} s: {:#?}",
            seen.wall,
            seen.changes
        );
    }

    #[test]
    fn a_waiting_child_grows_the_count_on_a_machine_busy_with_other_work() {
        let mut c = Controller::new(settings(256));
        let machine = Machine {
            others: 1.0,
            ..Machine::waiting(3.0)
        };
        let seen = machine.run(&mut c, 300);
        assert!(seen.peak_limit > 20, "{:#?}", seen.changes);
    }

    #[test]
    fn a_cpu_bound_child_keeps_the_count_near_the_cores() {
        let mut c = Controller::new(settings(256));
        let machine = Machine {
            cpu: 0.7,
            wait: 0.05,
            ..Machine::waiting(0.0)
        };
        let seen = machine.run(&mut c, 200);
        assert!(seen.peak_limit <= 5, "{:#?}", seen.changes);
        assert!(
            seen.changes
                .iter()
                .any(|c| c.to < c.from && c.reason.contains("CPU is saturated")),
            "the probe past the cores is taken back: {:#?}",
            seen.changes
        );
        // The CPU floor is 200 × 0.7 s / 2 cores = 70 s.
        assert!(seen.wall < 70.0 * 1.15, "took {} s", seen.wall);
    }

    #[test]
    fn a_memory_heavy_child_never_takes_the_floor() {
        let mut c = Controller::new(settings(256));
        let machine = Machine {
            memory: 1600 * MIB,
            rss: 100 * MIB,
            ..Machine::waiting(3.0)
        };
        let seen = machine.run(&mut c, 60);
        // The floor is the larger of a tenth (160 MiB) and one child (100 MiB): 14 children fit
        // over it, and the 15th would take the machine under it.
        assert!(seen.peak_running as u64 * 100 <= 1600 - 160, "{seen:#?}");
        assert!(
            seen.peak_running >= 8,
            "it still grows as far as memory allows: {seen:#?}"
        );
    }

    #[test]
    fn memory_taken_by_others_shrinks_the_count_at_once() {
        let mut c = Controller::new(settings(256));
        c.started(0.0);
        let sample = Sample {
            cpu_busy: 0.1,
            mem_total: 10 << 30,
            mem_available: 700 * MIB,
            children_rss: vec![100 * MIB; 4],
            ended_peak_rss: 0,
        };
        let change = c.decide(1.5, &sample, 4, true).expect("a change");
        // The floor is 1024 MiB: 324 MiB short, 4 children's worth (rounded up).
        assert_eq!((change.from, change.to), (4, 1), "{change:?}");
        assert!(
            change.reason.contains("under the floor 1024 MiB"),
            "{change:?}"
        );
    }

    #[test]
    fn children_still_growing_count_at_the_size_the_largest_reached() {
        let mut c = Controller::new(settings(256));
        c.started(0.0);
        // One child is at 500 MiB, three just started; 2 GiB available over a 1 GiB floor
        // would hold them, but not once all four reach 500 MiB.
        let sample = Sample {
            cpu_busy: 0.1,
            mem_total: 10 << 30,
            mem_available: 2 << 30,
            children_rss: vec![500 * MIB, 10 * MIB, 10 * MIB, 10 * MIB],
            ended_peak_rss: 0,
        };
        let change = c.decide(1.5, &sample, 4, true).expect("a change");
        assert_eq!(change.to, 3, "{change:?}");
    }

    #[test]
    fn the_assume_rate_bounds_growth() {
        let mut c = Controller::new(AutoSettings {
            assume_rate: Some(2.0),
            ..settings(256)
        });
        // Two credentials a second keep four 2-second targets busy; twice that at most.
        let seen = Machine::waiting(2.0).run(&mut c, 200);
        assert!(seen.peak_limit <= 8, "{:#?}", seen.changes);
    }

    #[test]
    fn nothing_grows_without_targets_waiting() {
        let mut c = Controller::new(settings(256));
        let seen = Machine::waiting(2.0).run(&mut c, 4);
        assert_eq!(seen.peak_limit, START, "{:#?}", seen.changes);
    }

    /// What one sample costs cove: `cargo test --lib sample_cost -- --ignored --nocapture`.
    /// Budget: under 1 ms of CPU per target. A target of D seconds sees at most
    /// max(8, D / 10) samples (twice a second for short ones), shared by the targets running
    /// at once.
    #[test]
    #[ignore = "a measurement; run by hand"]
    fn sample_cost() {
        use std::process::Command;
        for children in [0usize, 16, 64, 256] {
            let mut spawned: Vec<_> = (0..children)
                .map(|_| Command::new("sleep").arg("30").spawn().unwrap())
                .collect();
            let pids: Vec<i32> = spawned.iter().map(|c| c.id() as i32).collect();
            let mut probe = Probe::new(Some(1 << 30));
            let mut controller = Controller::new(settings(256));
            let rounds = 200;
            let cpu = || {
                let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
                    .unwrap();
                let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 + v.tv_usec() as f64 / 1e6;
                t(u.user_time()) + t(u.system_time())
            };
            let before = cpu();
            for i in 0..rounds {
                let sample = probe.sample(&pids);
                controller.decide(f64::from(i) * 0.5, &sample, children, true);
            }
            let per_sample = (cpu() - before) / f64::from(rounds);
            let last = probe.sample(&pids);
            eprintln!(
                "machine: CPU {:.0}% busy, {} of {} available; children {:?} MiB",
                last.cpu_busy * 100.0,
                mib(last.mem_available),
                mib(last.mem_total),
                last.children_rss
                    .iter()
                    .take(3)
                    .map(|r| r >> 20)
                    .collect::<Vec<_>>()
            );
            let at_once = children.max(1) as f64;
            eprintln!(
                "{children:>3} children: {:.0} µs of CPU per sample; per target at {children} at once: {:.3} ms (2 s), {:.3} ms (30 s), {:.3} ms (300 s)",
                per_sample * 1e6,
                4.0 * per_sample / at_once * 1e3,
                8.0 * per_sample / at_once * 1e3,
                30.0 * per_sample / at_once * 1e3,
            );
            assert!(per_sample < 0.05, "{per_sample} s per sample");
            for child in &mut spawned {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
