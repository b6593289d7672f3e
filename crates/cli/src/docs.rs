//! `enc completions` and `enc man`: clap's own generators over the command line itself, so
//! they can never drift from it.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::{Cli, ui};

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "enc", &mut out);
    out.flush()?;
    Ok(())
}

/// Writes enc(1) to stdout, or every page (enc.1, enc-vault.1, enc-vault-share.1, …) into
/// `dir`.
pub fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return Ok(out.flush()?);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    write_pages(&cmd, "enc", dir, &mut written)?;
    ui::note!("wrote {written} manual pages into {}", dir.display());
    Ok(())
}

/// Writes the page of `cmd` (called `name`) and those of its subcommands, depth first.
fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    let page = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let path = dir.join(format!("{name}.1"));
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    clap_mangen::Man::new(page)
        .render(&mut file)
        .with_context(|| format!("writing {}", path.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, argument and flag a user can see says what it is for (item 16 of the
    /// hardening issue): walks the real command tree, so a new undocumented flag fails here.
    #[test]
    fn every_command_and_argument_is_described() {
        let mut missing = Vec::new();
        check(&Cli::command(), "enc", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }

    fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        if cmd.get_about().is_none() && path != "enc" {
            missing.push(format!("{path} (command)"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
            // clap appends `[env: X=]` by itself; a help text that names it too says it twice.
            if let (Some(env), Some(help)) = (arg.get_env(), arg.get_help()) {
                let env = env.to_string_lossy();
                if help.to_string().contains(env.as_ref()) {
                    missing.push(format!("{path} {id}: names {env} again"));
                }
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
    }

    #[test]
    fn every_page_renders_and_completions_cover_every_command() {
        let dir = tempfile_dir();
        let mut written = 0;
        write_pages(&Cli::command(), "enc", &dir, &mut written).unwrap();
        let share = std::fs::read_to_string(dir.join("enc-vault-share.1")).unwrap();
        assert!(share.contains("read\\-only"), "{share}");
        assert!(written > 30, "{written} pages");
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "enc",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        for word in [
            "push",
            "pull",
            "vault",
            "share",
            "--read-only",
            "completions",
        ] {
            assert!(script.contains(word), "bash completion lacks {word}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("enc-man-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
