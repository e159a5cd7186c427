//! Command-line parsing and help text. Hand-written: four subcommands with a handful of flags do not justify a
//! parser dependency in users' binaries.

use std::collections::BTreeMap;
use std::ffi::OsString;

use super::CliError;

/// One option of a subcommand.
pub(super) struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's placeholder in help (`DIR`), or `None` for a flag.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// A subcommand: its name, one-line summary, longer description and options.
pub(super) struct Command {
    pub name: &'static str,
    pub summary: &'static str,
    pub about: &'static str,
    pub opts: &'static [Opt],
}

const HELP_OPT: Opt = Opt { long: "help", short: Some('h'), value: None, help: "Show this help" };

pub(super) const COMMANDS: &[Command] = &[
    Command {
        name: "generate",
        summary: "Write the project's datafiles (.datasource and .pipe files)",
        about: "Writes every datafile of the project under DIR (datasources/, endpoints/ and pipes/), creating folders \
                as needed. Other files in DIR are left alone; datafiles that are not part of the project are reported.",
        opts: &[
            Opt { long: "out", short: Some('o'), value: Some("DIR"), help: "Folder to write to [default: tinybird]" },
            Opt {
                long: "json",
                short: None,
                value: None,
                help: "Print the datafiles as JSON on stdout instead of writing them",
            },
            HELP_OPT,
        ],
    },
    Command {
        name: "check",
        summary: "Validate the project: names, templates, references; optionally compare with a folder",
        about: "Validates the project without contacting any server: resource names are valid and unique, every \
                datafile can be written and every template parses. Pipes reading datasources the project does not \
                define are warnings. With --against DIR, the project is also compared with the datafiles in DIR \
                (for example the output of an earlier `generate`, or a pulled workspace): any difference fails the \
                check.",
        opts: &[
            Opt {
                long: "against",
                short: None,
                value: Some("DIR"),
                help: "Compare the project with the datafiles in DIR",
            },
            Opt { long: "deny-warnings", short: None, value: None, help: "Fail when there are warnings" },
            HELP_OPT,
        ],
    },
    Command {
        name: "build",
        summary: "Build the project on Tinybird Local (POST /v1/build)",
        about: "Uploads the datafiles to /v1/build on Tinybird Local (http://localhost:7181 by default) or the server \
                at --url. The token is TINYBIRD_TOKEN when set; otherwise it is the workspace admin token Tinybird \
                Local hands out at GET /tokens.",
        opts: &[
            Opt {
                long: "local",
                short: None,
                value: None,
                help: "Build on Tinybird Local at http://localhost:7181 (the default)",
            },
            Opt { long: "url", short: None, value: Some("URL"), help: "Build on the server at URL instead" },
            Opt { long: "dry-run", short: None, value: None, help: "Validate and list the datafiles; send nothing" },
            HELP_OPT,
        ],
    },
    Command {
        name: "deploy",
        summary: "Deploy the project to a Tinybird workspace (POST /v1/deploy)",
        about: "Deploys the datafiles to the workspace at TINYBIRD_URL (default https://api.tinybird.co) with \
                TINYBIRD_TOKEN (a workspace admin token): discards stale deployments, creates a deployment, waits \
                until its data is ready, promotes it and removes the deployment that was live before.",
        opts: &[
            Opt {
                long: "check",
                short: None,
                value: None,
                help: "Only ask the server to validate the deployment; change nothing",
            },
            Opt {
                long: "allow-destructive-operations",
                short: None,
                value: None,
                help: "Allow changes that drop data (removed datasources or columns)",
            },
            Opt {
                long: "no-wait",
                short: None,
                value: None,
                help: "Return once the server accepts the deployment (it promotes it itself when ready, unless --no-auto)",
            },
            Opt {
                long: "no-auto",
                short: None,
                value: None,
                help: "Stage the deployment: wait until its data is ready, do not promote it (see promote, discard)",
            },
            Opt { long: "dry-run", short: None, value: None, help: "Validate and list the datafiles; send nothing" },
            HELP_OPT,
        ],
    },
    Command {
        name: "promote",
        summary: "Make a staged deployment live (after deploy --no-auto)",
        about: "Sets a staged deployment live on the workspace at TINYBIRD_URL with TINYBIRD_TOKEN, then removes the \
                deployment that was live before. Without --id, the newest staged deployment whose data is ready.",
        opts: &[Opt { long: "id", short: None, value: Some("ID"), help: "The deployment to promote" }, HELP_OPT],
    },
    Command {
        name: "discard",
        summary: "Drop a staged deployment (after deploy --no-auto); the live one stays",
        about: "Deletes a deployment that is not live on the workspace at TINYBIRD_URL with TINYBIRD_TOKEN. Without \
                --id, the newest deployment that is not live.",
        opts: &[Opt { long: "id", short: None, value: Some("ID"), help: "The deployment to discard" }, HELP_OPT],
    },
];

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Invocation {
    /// `--help`, `help` or no arguments: the top-level help.
    Help,
    /// `<command> --help` or `help <command>`.
    CommandHelp(&'static str),
    /// `--version`.
    Version,
    /// A subcommand and its options (long name → value, `None` for flags).
    Run { command: &'static str, opts: BTreeMap<&'static str, Option<String>> },
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::usage(message)
}

fn find_command(name: &str) -> Result<&'static Command, CliError> {
    COMMANDS.iter().find(|c| c.name == name).ok_or_else(|| {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let mut msg = format!("unknown command `{name}`");
        if let Some(close) = closest(name, names.iter().copied()) {
            msg.push_str(&format!("; did you mean `{close}`?"));
        } else {
            msg.push_str(&format!("; the commands are {}", names.join(", ")));
        }
        usage(msg)
    })
}

/// Parses the arguments after the program name.
pub(super) fn parse<I, S>(args: I) -> Result<Invocation, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.into().into_string().map_err(|raw| usage(format!("argument {raw:?} is not valid UTF-8"))))
        .collect::<Result<_, _>>()?;
    let mut rest = args.iter();
    let Some(first) = rest.next() else {
        return Ok(Invocation::Help);
    };
    match first.as_str() {
        "-h" | "--help" => return Ok(Invocation::Help),
        "-V" | "--version" => return Ok(Invocation::Version),
        "help" => {
            return match (rest.next(), rest.next()) {
                (None, _) => Ok(Invocation::Help),
                (Some(name), None) => Ok(Invocation::CommandHelp(find_command(name)?.name)),
                (Some(_), Some(extra)) => Err(usage(format!("unexpected argument `{extra}` after `help <command>`"))),
            };
        }
        flag if flag.starts_with('-') => {
            return Err(usage(format!(
                "unknown option `{flag}` before the command; expected a command or --help/--version"
            )));
        }
        _ => {}
    }
    let command = find_command(first)?;
    let mut opts: BTreeMap<&'static str, Option<String>> = BTreeMap::new();
    while let Some(arg) = rest.next() {
        let (opt, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let opt = command.opts.iter().find(|o| o.long == name).ok_or_else(|| {
                let mut msg = format!("unknown option `--{name}` for `{}`", command.name);
                if let Some(close) = closest(name, command.opts.iter().map(|o| o.long)) {
                    msg.push_str(&format!("; did you mean `--{close}`?"));
                }
                usage(msg)
            })?;
            (opt, inline)
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let c = chars.next().unwrap_or('-');
            let attached = chars.as_str();
            let opt = command
                .opts
                .iter()
                .find(|o| o.short == Some(c))
                .ok_or_else(|| usage(format!("unknown option `-{c}` for `{}`", command.name)))?;
            let inline = (!attached.is_empty()).then(|| attached.to_owned());
            (opt, inline)
        } else {
            return Err(usage(format!("unexpected argument `{arg}` for `{}`", command.name)));
        };
        if opt.long == "help" {
            return Ok(Invocation::CommandHelp(command.name));
        }
        let value = match (opt.value, inline) {
            (None, None) => None,
            (None, Some(_)) => return Err(usage(format!("`--{}` takes no value", opt.long))),
            (Some(_), Some(v)) => Some(v),
            (Some(meta), None) => match rest.next() {
                Some(v) if !v.starts_with('-') || v == "-" => Some(v.clone()),
                _ => {
                    return Err(usage(format!("`--{}` needs a value: --{} {meta}", opt.long, opt.long)));
                }
            },
        };
        if value.as_deref() == Some("") {
            return Err(usage(format!("`--{}` needs a non-empty value", opt.long)));
        }
        if opts.insert(opt.long, value).is_some() {
            return Err(usage(format!("`--{}` is given more than once", opt.long)));
        }
    }
    Ok(Invocation::Run { command: command.name, opts })
}

/// The candidate within edit distance 2 of `input`, if any: a typo, not a different word.
fn closest<'a>(input: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates.map(|c| (edit_distance(input, c), c)).filter(|(d, _)| *d <= 2).min_by_key(|(d, _)| *d).map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The top-level help.
pub(super) fn help(bin: &str) -> String {
    let mut out = format!(
        "Generate, check, build and deploy this project's Tinybird resources.\n\n\
         Usage: {bin} <COMMAND> [OPTIONS]\n\nCommands:\n"
    );
    for c in COMMANDS {
        out.push_str(&format!("  {:<10} {}\n", c.name, c.summary));
    }
    out.push_str(&format!("  {:<10} {}\n", "help", "Show this help, or a command's help"));
    out.push_str(
        "\nOptions:\n  -h, --help     Show this help\n  -V, --version  Show the version\n\n\
         Environment:\n  TINYBIRD_TOKEN  Workspace admin token (deploy; build against a server other than Tinybird Local)\n  \
         TINYBIRD_URL    API base URL for deploy [default: https://api.tinybird.co] (TINYBIRD_HOST is read too)\n\n\
         Exit codes: 0 success, 1 failed (server refused, check failed, unreachable), 2 usage error,\n\
         3 configuration error (missing or rejected token, bad URL)\n",
    );
    out.push_str(&format!("\nRun `{bin} help <COMMAND>` for a command's options.\n"));
    out
}

/// The help of one command.
pub(super) fn command_help(bin: &str, name: &str) -> String {
    let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
        return help(bin);
    };
    let mut out = format!("{}\n\n", command.summary);
    out.push_str(&wrap(command.about, 100));
    out.push_str(&format!("\n\nUsage: {bin} {} [OPTIONS]\n\nOptions:\n", command.name));
    let rows: Vec<(String, &str)> = command
        .opts
        .iter()
        .map(|o| {
            let short = o.short.map_or("    ".to_owned(), |s| format!("-{s}, "));
            let value = o.value.map_or(String::new(), |v| format!(" <{v}>"));
            (format!("{short}--{}{value}", o.long), o.help)
        })
        .collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (left, help) in rows {
        out.push_str(&format!("  {left:<width$}  {help}\n"));
    }
    out
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_suggestions() {
        assert_eq!(closest("chek", ["check", "deploy"].into_iter()), Some("check"));
        assert_eq!(closest("zzzzzz", ["check", "deploy"].into_iter()), None);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn values_attach_or_follow() {
        let parsed = parse(["generate", "-odir"]).unwrap();
        let Invocation::Run { opts, .. } = parsed else { panic!("expected a run, got {parsed:?}") };
        assert_eq!(opts.get("out"), Some(&Some("dir".to_owned())));
        let parsed = parse(["generate", "--out=x", "--json"]).unwrap();
        let Invocation::Run { opts, .. } = parsed else { panic!("expected a run, got {parsed:?}") };
        assert_eq!(opts.get("out"), Some(&Some("x".to_owned())));
        assert_eq!(opts.get("json"), Some(&None));
    }
}
