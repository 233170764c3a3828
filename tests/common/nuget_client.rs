//! The real NuGet client (Debian's `nuget`, 2.8 on mono), bounded in time: packing,
//! pushing, deleting, listing and installing, each in a private HOME.

#![allow(dead_code)] // each test file uses some of it

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::example_server::{Run, Server, run};

/// A feed's URLs on an example server.
pub trait Feeds {
    fn feed(&self, feed: &str) -> String;
    fn push_source(&self, feed: &str) -> String;
}

impl Feeds for Server {
    fn feed(&self, feed: &str) -> String {
        format!("{}/F/{feed}/api/v2", self.url)
    }

    fn push_source(&self, feed: &str) -> String {
        format!("{}/F/{feed}/api/v2/package", self.url)
    }
}

/// Whether `nuget` is on the PATH. (Running it to find out would not do: without a
/// terminal, mono's console width is zero and `nuget help` prints for ever.)
pub fn have_nuget() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("nuget").is_file()))
}

/// Runs the real client in `cwd` with a private HOME, bounded in time.
///
/// Mono's HTTP stack sometimes fails to write a request's headers on a loaded machine
/// ("SendFailure (Error writing headers)", a known mono client fault): the request never
/// reached the server, so it is sent once more, and the retry is printed.
pub fn nuget(home: &Path, cwd: &Path, args: &[&str]) -> Run {
    let once = || {
        let mut command = Command::new("nuget");
        command
            .args(args)
            .arg("-NonInteractive")
            .current_dir(cwd)
            .env("HOME", home);
        run(command, 120)
    };
    let first = once();
    if !first.ok && first.output.contains("Error writing headers") {
        eprintln!(
            "nuget {args:?}: mono could not write the request's headers; sending it again\n{}",
            first.output
        );
        return once();
    }
    first
}

/// `nuget list` under a pseudo-terminal with a width: without one, mono's console reports
/// a width of zero and the client prints blank lines for ever.
pub fn nuget_list(home: &Path, cwd: &Path, source: &str, config: Option<&Path>) -> Run {
    let mut cmd = format!("stty cols 200; nuget list -Source '{source}' -NonInteractive");
    if let Some(config) = config {
        cmd.push_str(&format!(" -ConfigFile '{}'", config.display()));
    }
    let mut command = Command::new("script");
    command
        .arg("-qec")
        .arg(cmd)
        .arg("/dev/null")
        .current_dir(cwd)
        .env("HOME", home);
    run(command, 120)
}

/// Packs `id` `version` into `dir`; returns the file name.
pub fn pack(dir: &Path, id: &str, version: &str) -> String {
    pack_with(dir, id, version, &format!("{id} {version}"))
}

/// Packs `id` `version` into `dir` with `readme` as its one content file.
pub fn pack_with(dir: &Path, id: &str, version: &str, readme: &str) -> String {
    std::fs::write(dir.join("readme.txt"), readme).unwrap();
    let nuspec = format!(
        r#"<?xml version="1.0"?>
<package><metadata><id>{id}</id><version>{version}</version><authors>Tests</authors><description>{id} for tests</description></metadata>
<files><file src="readme.txt" target="content" /></files></package>"#
    );
    let name = format!("{id}.{version}.nuspec");
    std::fs::write(dir.join(&name), nuspec).unwrap();
    let run = nuget(dir, dir, &["pack", &name, "-OutputDirectory", "."]);
    assert!(run.ok, "pack: {}", run.output);
    format!("{id}.{version}.nupkg")
}

pub struct Client {
    pub home: PathBuf,
    pub work: PathBuf,
}

impl Client {
    pub fn new(server: &Server, name: &str) -> Self {
        let home = server.dir.path().join(format!("home-{name}"));
        let work = server.dir.path().join(format!("work-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        Self { home, work }
    }

    pub fn push(&self, server: &Server, feed: &str, package: &str, key: &str) -> Run {
        nuget(
            &self.home,
            &self.work,
            &[
                "push",
                package,
                "-Source",
                &server.push_source(feed),
                "-ApiKey",
                key,
            ],
        )
    }

    /// `nuget delete`.
    pub fn delete(&self, server: &Server, feed: &str, id: &str, version: &str, key: &str) -> Run {
        let source = server.push_source(feed);
        let args = ["delete", id, version, "-Source", &source, "-ApiKey", key];
        nuget(&self.home, &self.work, &args)
    }

    /// A config file naming `feed` with Basic credentials.
    pub fn config(&self, server: &Server, feed: &str, user: &str, password: &str) -> PathBuf {
        let config = self.work.join(format!("{feed}-{}.config", password.len()));
        std::fs::write(
            &config,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><configuration></configuration>",
        )
        .unwrap();
        let run = nuget(
            &self.home,
            &self.work,
            &[
                "sources",
                "add",
                "-Name",
                feed,
                "-Source",
                &server.feed(feed),
                "-UserName",
                user,
                "-Password",
                password,
                "-StorePasswordInClearText",
                "-ConfigFile",
                config.to_str().unwrap(),
            ],
        );
        assert!(run.ok, "sources add: {}", run.output);
        config
    }

    pub fn install(&self, feed_or_source: &str, id: &str, config: Option<&Path>) -> Run {
        let out = self.work.join("installed");
        let _ = std::fs::remove_dir_all(&out);
        let mut args = vec![
            "install",
            id,
            "-Source",
            feed_or_source,
            "-OutputDirectory",
            out.to_str().unwrap(),
            "-NoCache",
        ];
        let config_arg;
        if let Some(config) = config {
            config_arg = config.to_str().unwrap().to_owned();
            args.push("-ConfigFile");
            args.push(&config_arg);
        }
        nuget(&self.home, &self.work, &args)
    }
}
