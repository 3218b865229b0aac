//! Where run folders live by default: outside any checkout, so a long run survives a fresh
//! clone and is resumed from wherever work starts again.

use std::path::PathBuf;

/// The environment variable naming the parent folder of run folders.
pub const RUNS_VARIABLE: &str = "INSTRUCT_IPT_RUNS";

/// The parent of run folders: `$INSTRUCT_IPT_RUNS` when set and not empty, else
/// `instruct-ipt/runs` in the user's cache folder (`~/.cache` on Linux, `~/Library/Caches` on
/// macOS, `%LOCALAPPDATA%` on Windows), else `runs` in the working folder.
pub fn runs_home() -> PathBuf {
    runs_home_from(std::env::var_os(RUNS_VARIABLE).map(PathBuf::from), dirs::cache_dir())
}

fn runs_home_from(variable: Option<PathBuf>, cache: Option<PathBuf>) -> PathBuf {
    match (variable.filter(|path| !path.as_os_str().is_empty()), cache) {
        (Some(path), _) => path,
        (None, Some(cache)) => cache.join("instruct-ipt").join("runs"),
        (None, None) => PathBuf::from("runs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_then_the_cache_then_the_working_folder() {
        let cache = Some(PathBuf::from("/home/me/.cache"));
        assert_eq!(runs_home_from(Some("/data/runs".into()), cache.clone()), PathBuf::from("/data/runs"));
        assert_eq!(runs_home_from(Some("".into()), cache.clone()), PathBuf::from("/home/me/.cache/instruct-ipt/runs"));
        assert_eq!(runs_home_from(None, cache), PathBuf::from("/home/me/.cache/instruct-ipt/runs"));
        assert_eq!(runs_home_from(None, None), PathBuf::from("runs"));
    }
}
