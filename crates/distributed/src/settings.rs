//! What an executor tells its tasks about itself: its name and the share of the machine
//! each task may use. It travels as an extension of the executor's session config.

/// An executor's own settings, read by every task it runs.
#[derive(Clone, Debug)]
pub struct ExecutorSettings {
    /// The executor's name, reported with each task's rows (the run record counts tasks
    /// per executor from it).
    pub name: String,
    /// Worker threads of one task.
    pub threads_per_task: usize,
    /// Memory budget of one task, in bytes.
    pub memory_per_task: u64,
}

impl ExecutorSettings {
    /// Settings for a task run outside an atlasflow executor: named after this host and
    /// process, one thread, 2 GiB.
    pub fn here() -> Self {
        ExecutorSettings { name: default_name(), threads_per_task: 1, memory_per_task: 2 << 30 }
    }
}

/// `HOST:PID`, which tells the executors of one machine apart.
pub fn default_name() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// This machine's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
