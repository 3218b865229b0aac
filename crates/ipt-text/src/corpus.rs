//! The instruction corpus (`datasets/instructions/<split>/`): one file per intent, one
//! sentence per line, and `compound.tsv` for requests naming two tasks.

use std::path::{Path, PathBuf};

use ipt_core::Task;

use crate::Intent;

/// One sentence and what it asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The sentence.
    pub text: String,
    /// What it asks for.
    pub label: Label,
}

/// The answer a sentence should get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// One intent (a task, or none).
    Single(Intent),
    /// Two tasks at once.
    Compound(Task, Task),
}

impl Label {
    /// The target distribution over [`Intent::ALL`]: one-hot, or half and half.
    pub fn target(self) -> [f32; 7] {
        let mut target = [0.0; 7];
        match self {
            Label::Single(intent) => target[intent.index()] = 1.0,
            Label::Compound(first, second) => {
                target[Intent::Restore(first).index()] = 0.5;
                target[Intent::Restore(second).index()] = 0.5;
            }
        }
        target
    }
}

/// Why a corpus could not be read; names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads every `<intent>.txt` and `compound.tsv` of `dir` (a split folder).
pub fn load(dir: &Path) -> Result<Vec<Example>, CorpusError> {
    let mut examples = Vec::new();
    for intent in Intent::ALL {
        let path = dir.join(format!("{}.txt", intent.name()));
        for (_, text) in lines(&path)? {
            examples.push(Example { text, label: Label::Single(intent) });
        }
    }
    let path = dir.join("compound.tsv");
    for (line, text) in lines(&path)? {
        let bad = |message: String| CorpusError::Line { path: path.clone(), line, message };
        let (tasks, sentence) = text.split_once('\t').ok_or_else(|| bad("expected `<task>+<task><TAB><sentence>`".into()))?;
        let (first, second) = tasks.split_once('+').ok_or_else(|| bad(format!("'{tasks}' is not `<task>+<task>`")))?;
        let parse = |name: &str| name.parse::<Task>().map_err(|_| bad(format!("unknown task '{name}'")));
        let (first, second) = (parse(first)?, parse(second)?);
        if first == second {
            return Err(bad("a compound request names two different tasks".into()));
        }
        examples.push(Example { text: sentence.trim().to_string(), label: Label::Compound(first, second) });
    }
    Ok(examples)
}

/// Non-empty, non-comment lines with their 1-based numbers.
fn lines(path: &Path) -> Result<Vec<(usize, String)>, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Io { path: path.into(), source })?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_end().to_string()))
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_distributions() {
        assert_eq!(Label::Single(Intent::None).target()[6], 1.0);
        let compound = Label::Compound(Task::Derain, Task::Dehaze).target();
        assert_eq!((compound[2], compound[3], compound.iter().sum::<f32>()), (0.5, 0.5, 1.0));
    }

    #[test]
    fn malformed_compound_lines_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("ipt-text-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for intent in Intent::ALL {
            std::fs::write(dir.join(format!("{}.txt", intent.name())), "# comment\nremove it\n\n").unwrap();
        }
        std::fs::write(dir.join("compound.tsv"), "derain+dehaze\trainy and foggy\nderain+sharpen\tx\n").unwrap();
        let message = load(&dir).unwrap_err().to_string();
        assert!(message.ends_with("compound.tsv:2: unknown task 'sharpen'"), "{message}");
        std::fs::write(dir.join("compound.tsv"), "derain+dehaze\trainy and foggy\n").unwrap();
        let examples = load(&dir).unwrap();
        assert_eq!(examples.len(), 8);
        assert_eq!(examples[7].label, Label::Compound(Task::Derain, Task::Dehaze));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
