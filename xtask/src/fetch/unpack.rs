//! Copies the wanted images out of a downloaded file into a dataset folder, flat by file name.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use ipt_data::spec::has_image_extension;

use super::manifest::{Download, FileKind};

/// Writes the images `download` contributes (the members of `take`, or the file itself) from
/// `file` into `folder`; returns their names. Each image is written to a hidden temporary file
/// first and renamed, so an interrupted run never leaves a truncated image behind.
pub fn unpack(download: &Download, file: &Path, folder: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let open = || File::open(file).with_context(|| format!("opening {}", file.display()));
    let mut written = Vec::new();
    match download.kind {
        FileKind::Plain => {
            written.push(place(&download.file_name, &mut open()?, folder)?);
        }
        FileKind::TarGz => unpack_tar(tar::Archive::new(flate2::read::GzDecoder::new(open()?)), download, folder, &mut written)?,
        FileKind::Tar => unpack_tar(tar::Archive::new(open()?), download, folder, &mut written)?,
        FileKind::Zip => {
            let mut archive = zip::ZipArchive::new(open()?).with_context(|| format!("{}: not a zip archive", file.display()))?;
            for index in 0..archive.len() {
                let mut member = archive.by_index(index).with_context(|| format!("{}: member {index}", file.display()))?;
                if member.is_file() && wanted(member.name(), &download.take) {
                    let name = member.name().to_string();
                    written.push(place(&name, &mut member, folder)?);
                }
            }
        }
    }
    let unique: BTreeSet<&String> = written.iter().collect();
    if unique.len() != written.len() {
        bail!("{}: two members share a file name", download.url);
    }
    if written.is_empty() {
        bail!("{}: no image matched `take` {:?}", download.url, download.take);
    }
    Ok(written)
}

/// The wanted members of a tar stream.
fn unpack_tar<R: Read>(mut archive: tar::Archive<R>, download: &Download, folder: &Path, written: &mut Vec<String>) -> Result<()> {
    let entries = archive.entries().with_context(|| format!("{}: not a tar archive", download.url))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("{}: a damaged tar archive", download.url))?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if entry.header().entry_type().is_file() && wanted(&name, &download.take) {
            written.push(place(&name, &mut entry, folder)?);
        }
    }
    Ok(())
}

/// Whether an archive member is an image listed in `take` (a path, or a folder ending in `/`).
fn wanted(member: &str, take: &[String]) -> bool {
    let member = member.trim_start_matches("./");
    has_image_extension(Path::new(member))
        && take.iter().any(|item| if item.ends_with('/') { member.starts_with(item.as_str()) } else { member == item })
}

/// Streams `reader` into `folder/<file name of member>` through a temporary file.
fn place(member: &str, reader: &mut impl Read, folder: &Path) -> Result<String> {
    let name = Path::new(member).file_name().with_context(|| format!("member `{member}` names no file"))?.to_string_lossy().into_owned();
    let target = folder.join(&name);
    let temporary = folder.join(format!(".{name}.part"));
    let mut file = File::create(&temporary).with_context(|| format!("creating {}", temporary.display()))?;
    std::io::copy(reader, &mut file).with_context(|| format!("writing {}", temporary.display()))?;
    file.sync_all()?;
    std::fs::rename(&temporary, &target).with_context(|| format!("renaming {} to {}", temporary.display(), target.display()))?;
    Ok(name)
}
