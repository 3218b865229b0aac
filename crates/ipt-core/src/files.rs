//! Whole-file writes that never leave a file half-written.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use tempfile::{NamedTempFile, TempDir};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename, so
/// an existing file is never left half-written. The file ends with the mode a plain
/// `File::create` would give it (`0666` less the umask) or, when it replaces a file, that
/// file's own mode.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// [`write_atomically`] for contents produced by `write` as they are written (an encoder
/// streaming into the file), so they are never held whole in memory. When `write` fails,
/// nothing is renamed: `path` keeps its previous contents and the temporary file is removed.
pub fn write_atomically_with(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temporary = temporary_file(folder)?;
    if let Ok(existing) = std::fs::metadata(path) {
        temporary.as_file().set_permissions(existing.permissions())?;
    }
    let (file, temporary_path) = temporary.into_parts();
    let mut writer = BufWriter::new(file);
    write(&mut writer)?;
    let file = writer.into_inner().map_err(|error| error.into_error())?;
    file.sync_all()?;
    NamedTempFile::from_parts(file, temporary_path).persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// An empty temporary folder in `parent`, named after `name`, with the mode `create_dir` would
/// give it (`0777` less the umask): fill it, then rename it to its final name so a folder of
/// files appears whole or not at all.
pub fn staging_folder(parent: &Path, name: &str) -> std::io::Result<TempDir> {
    let prefix = format!("{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o777));
    }
    builder.tempdir_in(parent)
}

/// A temporary file in `folder` created with mode `0666` (the umask applies), not the
/// owner-only mode temporary files get by default.
#[cfg(unix)]
fn temporary_file(folder: &Path) -> std::io::Result<NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new().permissions(std::fs::Permissions::from_mode(0o666)).tempfile_in(folder)
}

/// A temporary file in `folder`.
#[cfg(not(unix))]
fn temporary_file(folder: &Path) -> std::io::Result<NamedTempFile> {
    NamedTempFile::new_in(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("out.bin");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("out.bin");
        write_atomically(&path, b"first").unwrap();
        let missing_folder = folder.path().join("missing").join("out.bin");
        assert!(write_atomically(&missing_folder, b"second").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
    }

    #[test]
    fn concurrent_writers_to_one_path_leave_one_whole_file_never_a_mix() {
        // Two writers (as two processes restoring into the same output) race on one path while
        // a reader watches: every read, and the end, is one writer's whole contents.
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("out.png");
        let contents = [vec![1u8; 300_000], vec![2u8; 200_000]];
        write_atomically(&path, &contents[0]).unwrap();
        std::thread::scope(|scope| {
            for content in &contents {
                let path = &path;
                scope.spawn(move || (0..40).for_each(|_| write_atomically(path, content).unwrap()));
            }
            for _ in 0..200 {
                let read = std::fs::read(&path).unwrap();
                assert!(contents.contains(&read), "a read saw {} bytes of a mix", read.len());
            }
        });
        assert!(contents.contains(&std::fs::read(&path).unwrap()));
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_writer_failing_midway_leaves_the_previous_file_and_no_temporary() {
        // What a full disk does: some bytes go out, then the write fails.
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("out.bin");
        write_atomically(&path, b"first").unwrap();
        let failed = write_atomically_with(&path, |file| {
            file.write_all(&[7; 100_000])?;
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"))
        });
        assert_eq!(failed.unwrap_err().kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 1, "the temporary file was removed");
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_a_plain_files_mode_and_replaced_files_keep_theirs() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let folder = tempfile::tempdir().unwrap();
        let plain = folder.path().join("plain.bin");
        std::fs::File::create(&plain).unwrap();
        let written = folder.path().join("written.bin");
        write_atomically(&written, b"new").unwrap();
        assert_eq!(mode(&written), mode(&plain), "0666 less the umask, as File::create gives");
        assert_ne!(mode(&written), 0o600, "not the owner-only mode of temporary files");

        let staged = staging_folder(folder.path(), "step").unwrap();
        let made = folder.path().join("made");
        std::fs::create_dir(&made).unwrap();
        assert_eq!(mode(staged.path()), mode(&made), "0777 less the umask, as create_dir gives");

        std::fs::set_permissions(&written, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&written, b"replaced").unwrap();
        assert_eq!(mode(&written), 0o640);
    }
}
