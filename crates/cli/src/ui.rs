//! Terminal details: how much to say, exit statuses, passphrases, confirmations, progress
//! bars, tables, sizes and times.
//!
//! The rule for output: stdout carries only what a command produced (listings, JSON, a
//! token, a pushed version, a pulled file with `-o -`); progress, confirmations, warnings and
//! errors go to stderr. `-q` silences progress and confirmations, never results or errors.

use std::fmt;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicI8, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zeroize::Zeroizing;

/// How much goes to stderr: -1 with `-q`, 0 by default, 1 and up with `-v`.
static LEVEL: AtomicI8 = AtomicI8::new(0);

/// Sets the level from `-q` and the number of `-v`s (clap refuses both together).
pub fn set_level(quiet: bool, verbose: u8) {
    let level = if quiet { -1 } else { verbose.min(3) as i8 };
    LEVEL.store(level, Ordering::Relaxed);
}

/// `-q`: no progress bars, no confirmations.
pub fn quiet() -> bool {
    LEVEL.load(Ordering::Relaxed) < 0
}

/// `-v`: details (timings, rates, each file of a directory).
pub fn verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) > 0
}

/// A confirmation or notice on stderr, unless `-q`.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::ui::quiet() {
            eprintln!($($arg)*);
        }
    };
}

/// A detail on stderr, with `-v` only.
macro_rules! detail {
    ($($arg:tt)*) => {
        if $crate::ui::verbose() {
            eprintln!($($arg)*);
        }
    };
}

pub(crate) use {detail, note};

/// Exit statuses, as restic's: 0 success, 1 error, 2 wrong usage, 3 done in part.
pub mod exit {
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const PARTIAL: u8 = 3;
    /// A closed stdout (`enc ls | head -1`): what a shell reports for SIGPIPE.
    pub const BROKEN_PIPE: u8 = 141;
}

/// Arguments that do not fit together (exit status 2, as clap's own usage errors).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error to return: `return Err(ui::usage("…"))`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Some of the work was done and some failed, each failure already reported on stderr
/// (exit status 3).
#[derive(Debug)]
pub struct Partial {
    pub failed: usize,
    pub total: usize,
    /// What happened to the failed ones: "files were not pushed".
    pub what: &'static str,
}

impl fmt::Display for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} {} (see above); the rest is done",
            self.failed, self.total, self.what
        )
    }
}

impl std::error::Error for Partial {}

/// The exit status for an error that ended a command.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        exit::USAGE
    } else if e.downcast_ref::<Partial>().is_some() {
        exit::PARTIAL
    } else if broken_pipe(e) {
        exit::BROKEN_PIPE
    } else {
        exit::ERROR
    }
}

/// The one line printed for an error: its context chain joined by `: `, leaving out a cause
/// whose text the message before it already ends with (errors that print their source).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Whether `e` comes from writing into a closed stdout.
pub fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The passphrase from `--passphrase-file` or `ENC_PASSPHRASE`, if one is given that way.
fn given_passphrase(file: Option<&Path>) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Some(f) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading passphrase file {}", f.display()))?,
        );
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            bail!("passphrase file {} is empty", f.display());
        }
        return Ok(Some(Zeroizing::new(line.to_string())));
    }
    Ok(std::env::var("ENC_PASSPHRASE").ok().map(Zeroizing::new))
}

fn prompt(text: &str) -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!("no passphrase: set ENC_PASSPHRASE, pass --passphrase-file, or run in a terminal");
    }
    Ok(Zeroizing::new(rpassword::prompt_password(text)?))
}

/// `--passphrase-file`, as given on the command line (set once, in `main`).
static PASSPHRASE_FILE: std::sync::OnceLock<Option<std::path::PathBuf>> =
    std::sync::OnceLock::new();

/// Remembers `--passphrase-file` for the acts of the account that need the passphrase.
pub fn set_passphrase_file(file: Option<std::path::PathBuf>) {
    let _ = PASSPHRASE_FILE.set(file);
}

/// The stored session, which asks for the passphrase (`--passphrase-file`,
/// `ENC_PASSPHRASE` or a prompt) only if an act of the account needs the account's signing
/// key: certifying or revoking a device, creating, sharing or unsharing a vault.
pub fn account(profile: &enc_client::Profile) -> anyhow::Result<enc_client::Account> {
    Ok(
        enc_client::Account::open(profile.clone())?.with_unlock(Box::new(|| {
            let file = PASSPHRASE_FILE.get().and_then(|f| f.as_deref());
            passphrase(file).map_err(|e| enc_client::ClientError::Usage(e.to_string()))
        })),
    )
}

/// The passphrase from `--passphrase-file`, `ENC_PASSPHRASE` or a prompt.
pub fn passphrase(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    match given_passphrase(file)? {
        Some(p) => Ok(p),
        None => prompt("Passphrase: "),
    }
}

/// Shortest passphrase accepted for a new account or a change.
pub const MIN_PASSPHRASE: usize = 8;

/// The rules a new passphrase must meet.
fn check_new(p: &str) -> anyhow::Result<()> {
    if p.chars().count() < MIN_PASSPHRASE {
        bail!("choose a passphrase of at least {MIN_PASSPHRASE} characters");
    }
    Ok(())
}

/// A new passphrase (`label` names it in prompts): its rules are checked before the
/// confirmation prompt, so nobody types a refused passphrase twice.
pub fn new_passphrase(file: Option<&Path>, label: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Some(p) = given_passphrase(file)? {
        check_new(&p)?;
        return Ok(p);
    }
    new_passphrase_prompt(label)
}

/// A new passphrase typed at the terminal (twice), its rules checked before the second time;
/// never from `ENC_PASSPHRASE` (which holds the current one).
pub fn new_passphrase_prompt(label: &str) -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!("no new passphrase: pass --new-passphrase-file FILE, or run in a terminal");
    }
    let first = prompt(&format!("{label}: "))?;
    check_new(&first)?;
    let again = prompt(&format!("{label} again: "))?;
    if *first != *again {
        bail!("the passphrases differ");
    }
    Ok(first)
}

/// Asks a yes/no question on the terminal; `false` without one.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Transfers smaller than this get no progress bar.
const BAR_THRESHOLD: u64 = 4 << 20;

/// A progress bar on stderr, shown only when stderr is a terminal, the transfer is large and
/// `-q` was not given.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(total: u64, label: &str) -> Self {
        let bar = if total >= BAR_THRESHOLD && !quiet() && std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .expect("valid template"),
            );
            b.set_message(label.to_string());
            b
        } else {
            ProgressBar::hidden()
        };
        Self(bar)
    }

    /// Work of unknown size: bytes so far and the rate, on a terminal without `-q`.
    pub fn open_ended(label: &str) -> Self {
        let bar = if !quiet() && std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}")
                    .expect("valid template"),
            );
            b.set_message(label.to_string());
            b
        } else {
            ProgressBar::hidden()
        };
        Self(bar)
    }

    /// A spinner with a changing message (the step a job is at), on a terminal without
    /// `-q`.
    pub fn steps(label: &str) -> Self {
        let bar = if !quiet() && std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{prefix} {spinner} {msg}").expect("valid template"),
            );
            b.set_prefix(label.to_string());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        } else {
            ProgressBar::hidden()
        };
        Self(bar)
    }

    /// Shows `msg` beside the label.
    pub fn set_message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// `--passphrase-file`, as given on the command line.
pub fn passphrase_file() -> Option<&'static Path> {
    PASSPHRASE_FILE.get().and_then(|f| f.as_deref())
}

impl enc_client::Progress for Bar {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

/// `1.5 MiB`.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// RFC 3339 time of a Unix timestamp.
pub fn time(ts: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(ts.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses a size: bytes, or with a KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB suffix.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size {text:?}: try 500MiB or 10GiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => anyhow::bail!("invalid size {text:?}: try 500MiB or 10GiB"),
    };
    Ok((n * mult).round() as u64)
}

/// Prints `rows` under `headers` on stdout, each column padded to its widest cell (two
/// spaces apart; the last column is not padded).
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
