//! Output: text for people (aligned tables, colour only on a terminal) or JSON for scripts.

use std::io::{IsTerminal, Write};

/// What the commands print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people: aligned tables, colour on a terminal.
    Text,
    /// One JSON document on standard output, for scripts.
    Json,
}

/// A colour for text on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Colour {
    Red,
    Yellow,
    Green,
    Cyan,
    Bold,
}

/// Where text goes: standard output, line by line as it comes (so that what a long command did
/// shows even if it fails later), coloured only when it is a terminal and `NO_COLOR` is not set
/// (<https://no-color.org>). With JSON, only the document [`finish`](Self::finish) is given.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) format: Format,
    colour: bool,
}

impl Out {
    pub(crate) fn new(format: Format) -> Self {
        let colour = format == Format::Text
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { format, colour }
    }

    /// `text` in `colour` when colour is on.
    pub(crate) fn paint(&self, text: &str, colour: Colour) -> String {
        if !self.colour {
            return text.to_owned();
        }
        let code = match colour {
            Colour::Red => "31",
            Colour::Yellow => "33",
            Colour::Green => "32",
            Colour::Cyan => "36",
            Colour::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// Writes a line of text (nothing with JSON). A closed pipe (`| head`) is not an error
    /// worth a message.
    pub(crate) fn line(&mut self, line: impl AsRef<str>) {
        if self.format == Format::Text {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout
                .write_all(line.as_ref().as_bytes())
                .and_then(|()| stdout.write_all(b"\n"));
        }
    }

    /// Adds a table: a header row and rows, each column as wide as its widest cell, numbers
    /// (columns flagged in `right`) aligned right, two spaces between columns and no space at
    /// the end of a line. `paint` may colour a cell after it is padded.
    pub(crate) fn table(
        &mut self,
        header: &[&str],
        right: &[bool],
        rows: &[Vec<String>],
        paint: impl Fn(usize, &str) -> Option<Colour>,
    ) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let header_row: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        for (r, row) in std::iter::once(&header_row).chain(rows).enumerate() {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let last = i + 1 == row.len();
                let pad = widths[i] - cell.chars().count();
                let padded = if right.get(i).copied().unwrap_or(false) {
                    format!("{}{cell}", " ".repeat(pad))
                } else if last {
                    cell.clone()
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                };
                let painted = match (r, paint(i, cell)) {
                    (0, _) => self.paint(&padded, Colour::Bold),
                    (_, Some(colour)) => self.paint(&padded, colour),
                    (_, None) => padded,
                };
                line.push_str(&painted);
                if !last {
                    line.push_str("  ");
                }
            }
            self.line(line);
        }
    }

    /// Ends the output: with JSON, writes `value` as the one document on standard output.
    pub(crate) fn finish(self, value: &serde_json::Value) {
        let mut stdout = std::io::stdout().lock();
        if self.format == Format::Json {
            let _ = serde_json::to_writer_pretty(&mut stdout, value)
                .map_err(std::io::Error::from)
                .and_then(|()| stdout.write_all(b"\n"));
        }
        let _ = stdout.flush();
    }
}

/// The colour of a lint severity.
pub(crate) fn severity_colour(severity: &str) -> Option<Colour> {
    match severity {
        "error" => Some(Colour::Red),
        "warning" => Some(Colour::Yellow),
        "note" => Some(Colour::Cyan),
        _ => None,
    }
}

/// The colour of an endpoint state.
pub(crate) fn state_colour(state: &str) -> Option<Colour> {
    match state {
        "healthy" => Some(Colour::Green),
        "degraded" => Some(Colour::Yellow),
        "paused" => Some(Colour::Red),
        _ => None,
    }
}

/// Progress of a long operation on standard error: a line rewritten in place on a terminal,
/// else a line every `every` steps; nothing when `silent`.
#[derive(Debug)]
pub(crate) struct Progress {
    terminal: bool,
    silent: bool,
    every: u64,
    done: u64,
    what: &'static str,
}

impl Progress {
    pub(crate) fn new(what: &'static str, every: u64, silent: bool) -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            silent,
            every: every.max(1),
            done: 0,
            what,
        }
    }

    pub(crate) fn step(&mut self) {
        self.done += 1;
        if self.silent {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r{} {}", self.what, self.done);
        } else if self.done % self.every == 0 {
            let _ = writeln!(stderr, "{} {} so far", self.what, self.done);
        }
    }

    pub(crate) fn finish(self) {
        if self.terminal && !self.silent && self.done > 0 {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// A value given on the command line that a message may repeat: a short, plain one (letters,
/// digits, `_`, `-`, `.`), such as an id. `None` for anything else (a pasted URL, token or
/// Email), which the message names by what it is instead.
pub(crate) fn shown(text: &str) -> Option<&str> {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (plain && (1..=64).contains(&text.len())).then_some(text)
}

/// A time for people: UTC to the second (`2026-11-26T09:30:05Z`); JSON keeps the exact time.
pub(crate) fn when(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
