//! The local-process engine: each container is a process of this machine, leader of its own
//! process group, fed its environment (plus `PORT`), its stdout/stderr read line by line and
//! handed to the task's log sink. Processes are forked by one long-lived spawner thread, so
//! `PR_SET_PDEATHSIG` (which fires when the *thread* that forked dies) means "when Portico
//! dies", even on `kill -9`. Everything else runs on plain threads: no async runtime needed.

use crate::images::{self, Catalog};
use crate::{
    BoxFuture, Condition, ContainerSpec, ContainerState, ContainerStatus, Engine, Health,
    HealthCheckSpec, LogLine, LogSink, RuntimeConfig, StartError, Stream, TaskPhase, TaskSpec,
    TaskStatus,
};
use parking_lot::Mutex;
use rustix::process::{kill_process_group, Pid, Signal};
use std::collections::HashMap;
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a started container's mapped ports may take to accept connections before the task
/// is reported running anyway.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// On shutdown, no container gets longer than this between SIGTERM and SIGKILL.
const SHUTDOWN_STOP_CAP: Duration = Duration::from_secs(5);

type SpawnRequest = (Command, mpsc::SyncSender<std::io::Result<Child>>);

struct LocalContainer {
    name: String,
    essential: bool,
    pid: Option<u32>,
    ports: Vec<(u16, SocketAddr)>,
    state: ContainerState,
    stop_timeout: Duration,
    health: Health,
    reason: Option<String>,
}

struct LocalTask {
    phase: TaskPhase,
    stopping: bool,
    containers: Vec<LocalContainer>,
}

type Tasks = Arc<Mutex<HashMap<String, LocalTask>>>;

/// Tasks as local processes.
pub struct LocalEngine {
    config: RuntimeConfig,
    tasks: Tasks,
    spawner: mpsc::Sender<SpawnRequest>,
}

impl LocalEngine {
    pub fn new(config: RuntimeConfig) -> LocalEngine {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        // The spawner thread lives as long as the process: children's parent-death signal is
        // tied to it.
        let _ = std::thread::Builder::new()
            .name("portico-spawner".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            });
        LocalEngine {
            config,
            tasks: Arc::new(Mutex::new(HashMap::new())),
            spawner: tx,
        }
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        spawn_with(&self.spawner, cmd)
    }
}

/// Forks `cmd` on the spawner thread.
fn spawn_with(spawner: &mpsc::Sender<SpawnRequest>, cmd: Command) -> std::io::Result<Child> {
    {
        let (tx, rx) = mpsc::sync_channel(1);
        spawner
            .send((cmd, tx))
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
        rx.recv()
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?
    }
}

/// Sets the parent-death signal in the forked child, before exec.
fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only makes two raw,
    // async-signal-safe system calls (prctl, getppid) through rustix; it allocates nothing and
    // takes no locks.
    #[allow(
        unsafe_code,
        reason = "pre_exec is the only way to set PR_SET_PDEATHSIG"
    )]
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // The parent may have died between fork and prctl: then nobody will signal us.
            match rustix::process::getppid() {
                Some(p) if p.as_raw_nonzero().get() as u32 == parent => Ok(()),
                _ => Err(std::io::Error::other("parent exited before exec")),
            }
        });
    }
}

fn signal_group(pid: u32, sig: Signal) {
    if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(p, sig);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn free_port() -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    l.local_addr()
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

fn read_lines(
    r: impl std::io::Read + Send + 'static,
    task_id: String,
    container: String,
    stream: Stream,
    logs: LogSink,
) {
    let _ = std::thread::Builder::new()
        .name("portico-log".into())
        .spawn(move || {
            let mut r = std::io::BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        while matches!(buf.last(), Some(b'\n' | b'\r')) {
                            buf.pop();
                        }
                        logs(LogLine {
                            task_id: task_id.clone(),
                            container: container.clone(),
                            stream,
                            line: String::from_utf8_lossy(&buf).into_owned(),
                            at_ms: now_ms(),
                        });
                    }
                }
            }
        });
}

impl LocalEngine {
    fn fail(tasks: &Tasks, task_id: &str, e: StartError) {
        tracing::info!(task = task_id, reason = %e, "task failed to start");
        if let Some(t) = tasks.lock().get_mut(task_id) {
            t.phase = TaskPhase::Failed {
                reason: e.to_string(),
            };
        }
        // Anything already started goes down with it.
        stop_task(tasks, task_id, None);
    }

    fn start_task(&self, spec: TaskSpec, logs: LogSink) {
        let tasks = &self.tasks;
        let catalog = match &spec.catalog {
            Some(p) => match Catalog::load(p) {
                Ok(c) => Some(c),
                Err(e) => return Self::fail(tasks, &spec.task_id, e),
            },
            None => None,
        };
        let mut resolved = Vec::new();
        for c in &spec.containers {
            match images::resolve(
                &c.image,
                c.entry_point.as_deref(),
                c.command.as_deref(),
                catalog.as_ref(),
                self.config.program.as_deref(),
            ) {
                Ok(r) => resolved.push(r),
                Err(e) => return Self::fail(tasks, &spec.task_id, e),
            }
        }
        let Some(order) = start_order(&spec.containers) else {
            return Self::fail(
                tasks,
                &spec.task_id,
                StartError::Spawn {
                    container: spec
                        .containers
                        .first()
                        .map(|c| c.name.clone())
                        .unwrap_or_default(),
                    detail: "the containers' dependsOn form a cycle".into(),
                },
            );
        };
        for i in order {
            let c = &spec.containers[i];
            let r = &resolved[i];
            match wait_for_dependencies(tasks, &spec.task_id, &spec.containers, c) {
                Wait::Ready => {}
                Wait::Stopping => return abandon(tasks, &spec.task_id),
                Wait::Failed(detail) => {
                    return Self::fail(
                        tasks,
                        &spec.task_id,
                        StartError::Spawn {
                            container: c.name.clone(),
                            detail,
                        },
                    )
                }
            }
            let mut ports = Vec::new();
            for cp in &c.container_ports {
                match free_port() {
                    Ok(a) => ports.push((*cp, a)),
                    Err(e) => {
                        return Self::fail(
                            tasks,
                            &spec.task_id,
                            StartError::NoPort {
                                container: c.name.clone(),
                                detail: e.to_string(),
                            },
                        )
                    }
                }
            }
            let mut env: Vec<(String, String)> = r
                .environment
                .iter()
                .chain(c.environment.iter())
                .cloned()
                .collect();
            if let Some((_, a)) = ports.first() {
                env.push(("PORT".into(), a.port().to_string()));
            }
            for (cp, a) in &ports {
                env.push((format!("PORTICO_PORT_{cp}"), a.port().to_string()));
            }
            env.push(("PORTICO_TASK_ID".into(), spec.task_id.clone()));
            env.push(("PORTICO_CONTAINER_NAME".into(), c.name.clone()));
            let workdir = c
                .working_directory
                .clone()
                .or_else(|| r.working_directory.clone());
            let mut cmd = Command::new(&r.argv[0]);
            cmd.args(&r.argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .envs(env.iter().map(|(k, v)| (k, v)));
            if let Some(wd) = &workdir {
                cmd.current_dir(wd);
            }
            die_with_parent(&mut cmd);
            let mut child = match self.spawn(cmd) {
                Ok(ch) => ch,
                Err(e) => {
                    let detail = if e.kind() == std::io::ErrorKind::NotFound {
                        format!(
                            "exec: \"{}\": executable file not found in $PATH",
                            r.argv[0]
                        )
                    } else {
                        e.to_string()
                    };
                    return Self::fail(
                        tasks,
                        &spec.task_id,
                        StartError::Spawn {
                            container: c.name.clone(),
                            detail,
                        },
                    );
                }
            };
            let pid = child.id();
            tracing::info!(task = %spec.task_id, container = %c.name, pid, argv = ?r.argv, "container started");
            if let Some(out) = child.stdout.take() {
                read_lines(
                    out,
                    spec.task_id.clone(),
                    c.name.clone(),
                    Stream::Stdout,
                    logs.clone(),
                );
            }
            if let Some(err) = child.stderr.take() {
                read_lines(
                    err,
                    spec.task_id.clone(),
                    c.name.clone(),
                    Stream::Stderr,
                    logs.clone(),
                );
            }
            let stopping = {
                let mut g = tasks.lock();
                match g.get_mut(&spec.task_id) {
                    Some(t) => {
                        if let Some(lc) = t.containers.get_mut(i) {
                            lc.pid = Some(pid);
                            lc.ports = ports;
                            lc.state = ContainerState::Running;
                        }
                        t.stopping
                    }
                    None => true,
                }
            };
            if let Some(limit) = c.memory_limit_mib {
                let tasks = tasks.clone();
                let tid = spec.task_id.clone();
                let _ = std::thread::Builder::new()
                    .name("portico-memory".into())
                    .spawn(move || watch_memory(tasks, tid, i, pid, limit));
            }
            let waiter_tasks = tasks.clone();
            let tid = spec.task_id.clone();
            let _ = std::thread::Builder::new()
                .name("portico-wait".into())
                .spawn(move || {
                    let code = child.wait().map(exit_code).unwrap_or(-1);
                    // Whatever the leader left behind in its group goes too.
                    signal_group(pid, Signal::KILL);
                    tracing::info!(task = %tid, pid, code, "container exited");
                    if let Some(t) = waiter_tasks.lock().get_mut(&tid) {
                        if let Some(lc) = t.containers.get_mut(i) {
                            lc.state = ContainerState::Exited { code };
                        }
                    }
                });
            if stopping {
                stop_task(tasks, &spec.task_id, None);
                return abandon(tasks, &spec.task_id);
            }
            if let Some(hc) = c.health_check.clone() {
                let checker = HealthChecker {
                    tasks: tasks.clone(),
                    spawner: self.spawner.clone(),
                    task_id: spec.task_id.clone(),
                    index: i,
                    pid,
                    env,
                    workdir,
                    spec: hc,
                };
                let _ = std::thread::Builder::new()
                    .name("portico-health".into())
                    .spawn(move || checker.run());
            }
        }
        // Running once every mapped port accepts connections (or a container already ended).
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let (ready, any_exited) = {
                let g = tasks.lock();
                let Some(t) = g.get(&spec.task_id) else {
                    return;
                };
                let addrs: Vec<SocketAddr> = t
                    .containers
                    .iter()
                    .filter(|c| c.state == ContainerState::Running)
                    .flat_map(|c| c.ports.iter().map(|(_, a)| *a))
                    .collect();
                let exited = t
                    .containers
                    .iter()
                    .any(|c| c.essential && matches!(c.state, ContainerState::Exited { .. }));
                (addrs, exited)
            };
            let all_ready = ready
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
            let stopping = tasks.lock().get(&spec.task_id).is_none_or(|t| t.stopping);
            if all_ready || any_exited || stopping || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        if let Some(t) = tasks.lock().get_mut(&spec.task_id) {
            if t.phase == TaskPhase::Starting {
                t.phase = TaskPhase::Running;
            }
        }
    }
}

/// Runs one container's health check until the container ends.
struct HealthChecker {
    tasks: Tasks,
    spawner: mpsc::Sender<SpawnRequest>,
    task_id: String,
    index: usize,
    pid: u32,
    env: Vec<(String, String)>,
    workdir: Option<String>,
    spec: HealthCheckSpec,
}

impl HealthChecker {
    fn running(&self) -> bool {
        self.tasks.lock().get(&self.task_id).is_some_and(|t| {
            !t.stopping
                && t.containers
                    .get(self.index)
                    .is_some_and(|c| c.pid == Some(self.pid) && c.state == ContainerState::Running)
        })
    }

    fn set(&self, h: Health) {
        if let Some(c) = self
            .tasks
            .lock()
            .get_mut(&self.task_id)
            .and_then(|t| t.containers.get_mut(self.index))
        {
            c.health = h;
        }
    }

    /// One check: exit status 0 within the timeout is a pass.
    fn check(&self) -> bool {
        let argv: Vec<String> = match self.spec.command.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["sh".into(), "-c".into(), self.spec.command[1..].join(" ")],
            Some("CMD") => self.spec.command[1..].to_vec(),
            _ => self.spec.command.clone(),
        };
        let Some(exe) = argv.first() else {
            return false;
        };
        let mut cmd = Command::new(exe);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(wd) = &self.workdir {
            cmd.current_dir(wd);
        }
        die_with_parent(&mut cmd);
        let Ok(mut child) = spawn_with(&self.spawner, cmd) else {
            return false;
        };
        let deadline = Instant::now() + self.spec.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(st)) => return st.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    signal_group(child.id(), Signal::KILL);
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    fn run(self) {
        let started = Instant::now();
        let mut failures = 0u32;
        loop {
            let next = Instant::now() + self.spec.interval;
            while Instant::now() < next {
                if !self.running() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20).min(self.spec.interval));
            }
            if !self.running() {
                return;
            }
            if self.check() {
                failures = 0;
                self.set(Health::Healthy);
            } else if started.elapsed() >= self.spec.start_period {
                failures += 1;
                if failures >= self.spec.retries.max(1) {
                    self.set(Health::Unhealthy);
                }
            }
        }
    }
}

/// Container indexes in an order where every container comes after what it depends on;
/// `None` on a cycle. Without dependencies, definition order.
fn start_order(containers: &[ContainerSpec]) -> Option<Vec<usize>> {
    let mut done: Vec<usize> = Vec::new();
    while done.len() < containers.len() {
        let next = (0..containers.len()).find(|i| {
            !done.contains(i)
                && containers[*i].depends_on.iter().all(|(name, _)| {
                    containers
                        .iter()
                        .position(|c| c.name == *name)
                        .is_none_or(|j| done.contains(&j))
                })
        })?;
        done.push(next);
    }
    Some(done)
}

enum Wait {
    Ready,
    Stopping,
    Failed(String),
}

/// How long a container waits for its dependencies.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(300);

/// Blocks until `c`'s dependencies meet their conditions.
fn wait_for_dependencies(
    tasks: &Tasks,
    task_id: &str,
    all: &[ContainerSpec],
    c: &ContainerSpec,
) -> Wait {
    let deadline = Instant::now() + DEPENDENCY_TIMEOUT;
    loop {
        let verdict = {
            let g = tasks.lock();
            let Some(t) = g.get(task_id) else {
                return Wait::Stopping;
            };
            if t.stopping {
                return Wait::Stopping;
            }
            let mut ready = true;
            for (name, cond) in &c.depends_on {
                let Some(j) = all.iter().position(|x| x.name == *name) else {
                    continue;
                };
                let Some(dep) = t.containers.get(j) else {
                    continue;
                };
                let ok = match (cond, &dep.state, dep.health) {
                    (Condition::Start, ContainerState::Pending, _) => false,
                    (Condition::Start, _, _) => true,
                    (Condition::Complete, ContainerState::Exited { .. }, _) => true,
                    (Condition::Success, ContainerState::Exited { code: 0 }, _) => true,
                    (Condition::Success, ContainerState::Exited { code }, _) => {
                        return Wait::Failed(format!(
                            "dependency {name} exited with code {code}, not SUCCESS"
                        ))
                    }
                    (Condition::Healthy, _, Health::Healthy) => true,
                    (Condition::Healthy, ContainerState::Exited { .. }, _) => {
                        return Wait::Failed(format!(
                            "dependency {name} exited before it was HEALTHY"
                        ))
                    }
                    _ => false,
                };
                ready &= ok;
            }
            ready
        };
        if verdict {
            return Wait::Ready;
        }
        if Instant::now() > deadline {
            return Wait::Failed(format!("dependencies of {} not met in time", c.name));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Kills a container whose process goes over its hard memory limit, as the kernel's OOM
/// killer does to a container on AWS.
fn watch_memory(tasks: Tasks, task_id: String, index: usize, pid: u32, limit_mib: u64) {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let running = tasks.lock().get(&task_id).is_some_and(|t| {
            t.containers
                .get(index)
                .is_some_and(|c| c.pid == Some(pid) && c.state == ContainerState::Running)
        });
        if !running {
            return;
        }
        if rss_kib(pid).is_some_and(|kib| kib > limit_mib * 1024) {
            tracing::info!(task = %task_id, pid, limit_mib, "container over its memory limit: SIGKILL");
            if let Some(c) = tasks
                .lock()
                .get_mut(&task_id)
                .and_then(|t| t.containers.get_mut(index))
            {
                c.reason = Some("OutOfMemoryError: Container killed due to memory usage".into());
            }
            signal_group(pid, Signal::KILL);
            return;
        }
    }
}

/// A stop arrived while the task was starting: it will never be running.
fn abandon(tasks: &Tasks, task_id: &str) {
    if let Some(t) = tasks.lock().get_mut(task_id) {
        if t.phase == TaskPhase::Starting {
            t.phase = TaskPhase::Failed {
                reason: "CannotStartContainerError: the task was stopped while it was starting"
                    .into(),
            };
        }
    }
}

/// SIGTERM to every running container's group now; SIGKILL after its stop timeout (capped).
fn stop_task(tasks: &Tasks, task_id: &str, cap: Option<Duration>) {
    let targets: Vec<(u32, Duration)> = {
        let mut g = tasks.lock();
        let Some(t) = g.get_mut(task_id) else { return };
        t.stopping = true;
        t.containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .filter_map(|c| c.pid.map(|p| (p, c.stop_timeout)))
            .collect()
    };
    for (pid, timeout) in targets {
        signal_group(pid, Signal::TERM);
        let timeout = cap.map_or(timeout, |c| timeout.min(c));
        let tasks = tasks.clone();
        let tid = task_id.to_string();
        let _ = std::thread::Builder::new()
            .name("portico-stop".into())
            .spawn(move || {
                let deadline = Instant::now() + timeout;
                while Instant::now() < deadline {
                    let running = tasks.lock().get(&tid).is_some_and(|t| {
                        t.containers
                            .iter()
                            .any(|c| c.pid == Some(pid) && c.state == ContainerState::Running)
                    });
                    if !running {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                tracing::info!(task = %tid, pid, "stop timeout passed: SIGKILL");
                signal_group(pid, Signal::KILL);
            });
    }
}

impl Engine for LocalEngine {
    fn launch(&self, spec: TaskSpec, logs: LogSink) {
        {
            let mut g = self.tasks.lock();
            if g.contains_key(&spec.task_id) {
                return;
            }
            g.insert(
                spec.task_id.clone(),
                LocalTask {
                    phase: TaskPhase::Starting,
                    stopping: false,
                    containers: spec
                        .containers
                        .iter()
                        .map(|c: &ContainerSpec| LocalContainer {
                            name: c.name.clone(),
                            essential: c.essential,
                            pid: None,
                            ports: Vec::new(),
                            state: ContainerState::Pending,
                            stop_timeout: c.stop_timeout,
                            health: Health::Unknown,
                            reason: None,
                        })
                        .collect(),
                },
            );
        }
        let me = LocalEngine {
            config: self.config.clone(),
            tasks: self.tasks.clone(),
            spawner: self.spawner.clone(),
        };
        let _ = std::thread::Builder::new()
            .name("portico-start".into())
            .spawn(move || me.start_task(spec, logs));
    }

    fn status(&self, task_id: &str) -> Option<TaskStatus> {
        let g = self.tasks.lock();
        let t = g.get(task_id)?;
        Some(TaskStatus {
            phase: t.phase.clone(),
            stopping: t.stopping,
            containers: t
                .containers
                .iter()
                .map(|c| ContainerStatus {
                    name: c.name.clone(),
                    essential: c.essential,
                    pid: c.pid,
                    ports: c.ports.clone(),
                    state: c.state.clone(),
                    health: c.health,
                    reason: c.reason.clone(),
                })
                .collect(),
        })
    }

    fn stop(&self, task_id: &str) {
        stop_task(&self.tasks, task_id, None);
    }

    fn forget(&self, task_id: &str) {
        self.tasks.lock().remove(task_id);
    }

    fn task_ids(&self) -> Vec<String> {
        self.tasks.lock().keys().cloned().collect()
    }

    fn reap_strays(&self, task_ids: &[String]) -> usize {
        let known = self.task_ids();
        let wanted: Vec<&String> = task_ids.iter().filter(|t| !known.contains(t)).collect();
        if wanted.is_empty() {
            return 0;
        }
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        let me = std::process::id();
        let mut n = 0;
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            // Only processes of ours that carry a task id we own.
            let Ok(env) = std::fs::read(e.path().join("environ")) else {
                continue;
            };
            let owned = env.split(|b| *b == 0).any(|kv| {
                kv.strip_prefix(b"PORTICO_TASK_ID=")
                    .is_some_and(|id| wanted.iter().any(|w| w.as_bytes() == id))
            });
            if owned {
                if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                    tracing::info!(pid, "killing a process left over from a previous run");
                    let _ = rustix::process::kill_process(p, Signal::KILL);
                    n += 1;
                }
            }
        }
        n
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let ids = self.task_ids();
            for id in &ids {
                stop_task(&self.tasks, id, Some(SHUTDOWN_STOP_CAP));
            }
            let deadline = Instant::now() + SHUTDOWN_STOP_CAP + Duration::from_secs(2);
            loop {
                let live = self.tasks.lock().values().any(|t| {
                    t.containers
                        .iter()
                        .any(|c| c.state == ContainerState::Running)
                });
                if !live || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.tasks.lock().clear();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn catalog(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
        let p = dir.join("images.json");
        std::fs::write(&p, body).unwrap();
        p
    }

    fn spec(id: &str, image: &str, cat: Option<std::path::PathBuf>, ports: Vec<u16>) -> TaskSpec {
        TaskSpec {
            task_id: id.into(),
            catalog: cat,
            containers: vec![ContainerSpec {
                name: "app".into(),
                image: image.into(),
                entry_point: None,
                command: None,
                environment: vec![("GREETING".into(), "hello".into())],
                working_directory: None,
                container_ports: ports,
                essential: true,
                stop_timeout: Duration::from_millis(300),
                health_check: None,
                depends_on: vec![],
                memory_limit_mib: None,
            }],
        }
    }

    fn wait(e: &LocalEngine, id: &str, f: impl Fn(&TaskStatus) -> bool) -> TaskStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = e.status(id) {
                if f(&s) {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "timed out: {:?}", e.status(id));
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("portico-rt-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn runs_logs_and_reports_exit_code() {
        let d = tmpdir("exit");
        let cat = catalog(
            &d,
            r#"{"images": {"t/echo": {"entryPoint": ["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"]}}}"#,
        );
        let e = LocalEngine::new(RuntimeConfig::default());
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        e.launch(
            spec("t1", "t/echo", Some(cat), vec![]),
            Arc::new(move |l: LogLine| l2.lock().push((l.stream, l.line))),
        );
        let s = wait(&e, "t1", |s| s.all_exited());
        assert_eq!(s.containers[0].state, ContainerState::Exited { code: 3 });
        std::thread::sleep(Duration::from_millis(100));
        let got = lines.lock().clone();
        assert!(got.contains(&(Stream::Stdout, "hello".to_string())));
        assert!(got.contains(&(Stream::Stderr, "oops".to_string())));
    }

    #[test]
    fn sigterm_then_sigkill_after_stop_timeout() {
        let d = tmpdir("stop");
        let cat = catalog(
            &d,
            r#"{"images": {"t/stubborn": {"entryPoint": ["sh", "-c", "trap '' TERM; while true; do sleep 0.05; done"]},
                            "t/polite": {"entryPoint": ["sleep", "30"]}}}"#,
        );
        let e = LocalEngine::new(RuntimeConfig::default());
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let sink: LogSink = Arc::new(move |_| {
            n2.fetch_add(1, Ordering::Relaxed);
        });
        e.launch(
            spec("a", "t/stubborn", Some(cat.clone()), vec![]),
            sink.clone(),
        );
        e.launch(spec("b", "t/polite", Some(cat), vec![]), sink);
        wait(&e, "a", |s| s.phase == TaskPhase::Running);
        wait(&e, "b", |s| s.phase == TaskPhase::Running);
        let started = Instant::now();
        e.stop("a");
        e.stop("b");
        let b = wait(&e, "b", |s| s.all_exited());
        assert_eq!(b.containers[0].state, ContainerState::Exited { code: 143 });
        let a = wait(&e, "a", |s| s.all_exited());
        assert_eq!(a.containers[0].state, ContainerState::Exited { code: 137 });
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn unknown_image_and_missing_command_fail_to_start() {
        let d = tmpdir("fail");
        let cat = catalog(
            &d,
            r#"{"images": {"t/missing": {"entryPoint": ["/nonexistent/portico-nope"]}}}"#,
        );
        let e = LocalEngine::new(RuntimeConfig::default());
        let sink: LogSink = Arc::new(|_| {});
        e.launch(
            spec("x", "nobody/nothing", Some(cat.clone()), vec![]),
            sink.clone(),
        );
        let s = wait(&e, "x", |s| matches!(s.phase, TaskPhase::Failed { .. }));
        let TaskPhase::Failed { reason } = s.phase else {
            unreachable!()
        };
        assert!(reason.starts_with("CannotPullContainerError: "), "{reason}");
        e.launch(spec("y", "t/missing", Some(cat), vec![]), sink);
        let s = wait(&e, "y", |s| matches!(s.phase, TaskPhase::Failed { .. }));
        let TaskPhase::Failed { reason } = s.phase else {
            unreachable!()
        };
        assert!(
            reason.starts_with("CannotStartContainerError: "),
            "{reason}"
        );
    }

    #[test]
    fn health_checks_pass_and_fail() {
        let d = tmpdir("health");
        let cat = catalog(
            &d,
            r#"{"images": {"t/sleep": {"entryPoint": ["sleep", "30"]}}}"#,
        );
        let e = LocalEngine::new(RuntimeConfig::default());
        for (id, cmd) in [("good", "test -n \"$PORTICO_TASK_ID\""), ("bad", "exit 1")] {
            let mut s = spec(id, "t/sleep", Some(cat.clone()), vec![]);
            s.containers[0].health_check = Some(HealthCheckSpec {
                command: vec!["CMD-SHELL".into(), cmd.into()],
                interval: Duration::from_millis(50),
                timeout: Duration::from_secs(2),
                retries: 2,
                start_period: Duration::ZERO,
            });
            e.launch(s, Arc::new(|_| {}));
        }
        wait(&e, "good", |s| s.containers[0].health == Health::Healthy);
        wait(&e, "bad", |s| s.containers[0].health == Health::Unhealthy);
        e.stop("good");
        e.stop("bad");
        wait(&e, "good", |s| s.all_exited());
        wait(&e, "bad", |s| s.all_exited());
    }

    #[test]
    fn depends_on_orders_starts() {
        let d = tmpdir("deps");
        let marker = d.join("init-done");
        let _ = std::fs::remove_file(&marker);
        let cat = catalog(
            &d,
            &format!(
                r#"{{"images": {{"t/init": {{"entryPoint": ["sh", "-c", "sleep 0.2; touch {m}"]}},
                   "t/main": {{"entryPoint": ["sh", "-c", "test -e {m} && sleep 30"]}}}}}}"#,
                m = marker.display()
            ),
        );
        let e = LocalEngine::new(RuntimeConfig::default());
        let mut s = spec("dep", "t/main", Some(cat), vec![]);
        let mut init = s.containers[0].clone();
        init.name = "init".into();
        init.image = "t/init".into();
        init.essential = false;
        s.containers[0].depends_on = vec![("init".into(), Condition::Success)];
        // Defined after the container that depends on it: still started first.
        s.containers.push(init);
        e.launch(s, Arc::new(|_| {}));
        let st = wait(&e, "dep", |s| s.phase == TaskPhase::Running);
        assert_eq!(st.containers[1].state, ContainerState::Exited { code: 0 });
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            e.status("dep").unwrap().containers[0].state,
            ContainerState::Running
        );
        e.stop("dep");
        wait(&e, "dep", |s| s.all_exited());
    }

    #[test]
    fn memory_limit_kills_the_container() {
        let d = tmpdir("oom");
        let cat = catalog(
            &d,
            r#"{"images": {"t/hog": {"entryPoint": ["python3", "-c", "import time\nx = bytearray(64 * 1024 * 1024)\ntime.sleep(30)"]}}}"#,
        );
        let e = LocalEngine::new(RuntimeConfig::default());
        let mut s = spec("hog", "t/hog", Some(cat), vec![]);
        s.containers[0].memory_limit_mib = Some(32);
        e.launch(s, Arc::new(|_| {}));
        let st = wait(&e, "hog", |s| s.all_exited());
        assert_eq!(st.containers[0].state, ContainerState::Exited { code: 137 });
        assert_eq!(
            st.containers[0].reason.as_deref(),
            Some("OutOfMemoryError: Container killed due to memory usage")
        );
    }

    #[test]
    fn port_is_passed_and_waited_for() {
        let d = tmpdir("port");
        let cat = catalog(
            &d,
            r#"{"images": {"t/py": {"entryPoint": ["python3", "-c", "import socket,os,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);s.bind(('127.0.0.1', int(os.environ['PORT'])));s.listen();time.sleep(30)"]}}}"#,
        );
        let e = LocalEngine::new(RuntimeConfig::default());
        e.launch(spec("p", "t/py", Some(cat), vec![80]), Arc::new(|_| {}));
        let s = wait(&e, "p", |s| s.phase != TaskPhase::Starting);
        assert_eq!(s.phase, TaskPhase::Running);
        let (cp, addr) = s.containers[0].ports[0];
        assert_eq!(cp, 80);
        TcpStream::connect(addr).unwrap();
        e.stop("p");
        wait(&e, "p", |s| s.all_exited());
    }
}
