//! fetch-data against a local HTTP server on 127.0.0.1 serving small fixture files.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::*;

/// A request the server saw: path and `Range` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Serves `files` over HTTP/1.1 with `Range` support; when `drop_first` is set, the first
/// response announces the whole length but stops halfway (a dropped connection).
fn serve(files: BTreeMap<String, Vec<u8>>, drop_first: bool) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let first = log.lock().unwrap().is_empty();
            let (path, range) = read_request(&stream);
            log.lock().unwrap().push((path.clone(), range.clone()));
            respond(stream, files.get(&path), range, drop_first && first);
        }
    });
    (address, seen)
}

fn read_request(stream: &TcpStream) -> (String, Option<String>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap() == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("range")) {
            let _ = name;
            range = Some(value.trim().to_string());
        }
    }
    (path, range)
}

fn respond(mut stream: TcpStream, file: Option<&Vec<u8>>, range: Option<String>, cut: bool) {
    let Some(bytes) = file else {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let start = range.and_then(|range| range.strip_prefix("bytes=")?.trim_end_matches('-').parse::<usize>().ok()).unwrap_or(0);
    let body = &bytes[start..];
    let head = if start > 0 {
        format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\n", bytes.len() - 1, bytes.len())
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    };
    let _ = stream.write_all(format!("{head}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes());
    let _ = stream.write_all(if cut { &body[..body.len() / 2] } else { body });
}

/// A small PNG whose pixels depend on `seed`.
fn png(seed: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([seed, x as u8 * 40, y as u8 * 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A .tgz with two wanted photos, one in an unwanted folder, and a text file.
fn fixture_archive() -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, bytes) in [
        ("set/images/train/a.png", png(1)),
        ("set/images/test/b.png", png(2)),
        ("set/images/val/c.png", png(3)),
        ("set/README.txt", b"hello".to_vec()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A manifest in `dir` holding `body`, loaded and checked.
fn manifest(dir: &Path, body: &str) -> Result<Manifest> {
    let path = dir.join("sources.toml");
    std::fs::write(&path, body).unwrap();
    Manifest::load(&path)
}

fn dataset_toml(url: &str, pin: &str) -> String {
    format!(
        "[[dataset]]\nname = \"Fixture\"\nfolder = \"train/Fixture\"\nabout = \"a\"\nlicence = \"b\"\ndefault = true\nimages = 2\n[[dataset.source]]\nurl = \"{url}\"\nsha256 = \"{pin}\"\ntake = [\"set/images/train/\", \"set/images/test/b.png\"]\n"
    )
}

const QUIET: Options = Options { keep_archives: false, force: false, progress: false };

fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(folder).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_dropped_transfer_resumes_and_only_the_taken_images_land() {
    let archive = fixture_archive();
    let (address, seen) = serve(BTreeMap::from([("/data/set.tgz".to_string(), archive.clone())]), true);
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &dataset_toml(&format!("{address}/data/set.tgz"), &sha256(&archive))).unwrap();
    let root = dir.path().join("data");
    let dataset = manifest.select(&[]).unwrap()[0];
    assert_eq!(fetch_dataset(dataset, &root, &QUIET).unwrap(), Outcome::Fetched(2));
    let folder = root.join("train/Fixture");
    assert_eq!(names_in(&folder), [".fetched", "a.png", "b.png"]);
    assert_eq!(std::fs::read(folder.join("a.png")).unwrap(), png(1));
    assert_eq!(std::fs::read(folder.join("b.png")).unwrap(), png(2));
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].1, None);
    assert_eq!(requests[1].1, Some(format!("bytes={}-", archive.len() / 2)));
    assert!(names_in(&root.join(".downloads")).is_empty(), "the archive is removed after unpacking");
    assert_eq!(fetch_dataset(dataset, &root, &QUIET).unwrap(), Outcome::AlreadyThere(2));
    assert_eq!(seen.lock().unwrap().len(), 2, "a complete dataset is not downloaded again");
}

#[test]
fn a_wrong_pin_fails_naming_the_url_and_unpacks_nothing() {
    let archive = fixture_archive();
    let (address, _) = serve(BTreeMap::from([("/set.tgz".to_string(), archive)]), false);
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), &dataset_toml(&format!("{address}/set.tgz"), &"0".repeat(64))).unwrap();
    let root = dir.path().join("data");
    let error = format!("{:#}", fetch_dataset(manifest.select(&[]).unwrap()[0], &root, &QUIET).unwrap_err());
    assert!(error.contains(&format!("{address}/set.tgz")) && error.contains("expected 0000"), "{error}");
    assert!(!root.join("train/Fixture").exists());
    assert!(names_in(&root.join(".downloads")).is_empty(), "the bad file is removed");
}

#[test]
fn offline_and_missing_files_give_clear_errors() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{closed}/set.tgz");
    let offline = manifest(dir.path(), &dataset_toml(&url, &"0".repeat(64))).unwrap();
    let error = format!("{:#}", fetch_dataset(offline.select(&[]).unwrap()[0], &dir.path().join("data"), &QUIET).unwrap_err());
    assert!(error.contains(&format!("cannot download {url} (offline")), "{error}");

    let (address, seen) = serve(BTreeMap::new(), false);
    let url = format!("{address}/gone.tgz");
    let missing = manifest(dir.path(), &dataset_toml(&url, &"0".repeat(64))).unwrap();
    let error = format!("{:#}", fetch_dataset(missing.select(&[]).unwrap()[0], &dir.path().join("data"), &QUIET).unwrap_err());
    assert!(error.contains(&format!("{url}: the server answered HTTP 404")), "{error}");
    assert_eq!(seen.lock().unwrap().len(), 1, "an HTTP error is not retried");
}

#[test]
fn numbered_plain_files_land_under_their_own_names() {
    let files = (8..=10).map(|number| (format!("/kodim{number:02}.png"), png(number))).collect();
    let (address, _) = serve(files, false);
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "[[dataset]]\nname = \"Few\"\nfolder = \"eval/Few\"\nabout = \"a\"\nlicence = \"b\"\nimages = 3\n[[dataset.source]]\nurl = \"{address}/kodim{{n}}.png\"\nnumbered = [8, 10]\n"
    );
    let manifest = manifest(dir.path(), &body).unwrap();
    assert!(manifest.select(&[]).unwrap().is_empty(), "not a default dataset");
    let dataset = manifest.select(&["few".to_string()]).unwrap()[0];
    let root = dir.path().join("data");
    assert_eq!(fetch_dataset(dataset, &root, &QUIET).unwrap(), Outcome::Fetched(3));
    assert_eq!(names_in(&root.join("eval/Few")), [".fetched", "kodim08.png", "kodim09.png", "kodim10.png"]);
    assert_eq!(std::fs::read(root.join("eval/Few/kodim10.png")).unwrap(), png(10));
}

#[test]
fn bad_manifests_name_the_dataset_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |name: &str, folder: &str, extra: &str| {
        format!("[[dataset]]\nname = \"{name}\"\nfolder = \"{folder}\"\nabout = \"a\"\nlicence = \"b\"\n{extra}\n")
    };
    let source = "[[dataset.source]]\nurl = \"https://example.org/a.zip\"\ntake = [\"x/\"]\n";
    let cases = [
        (entry("A", "../up", source), "`folder` ../up must be a relative path"),
        (entry("A", "x", source) + &entry("a", "y", source), "dataset `a` is listed twice"),
        (entry("A", "x", ""), "has neither `source` nor `manual`"),
        (entry("A", "x", &format!("manual = \"by hand\"\n{source}")), "has both"),
        (
            entry("A", "x", "[[dataset.source]]\nurl = \"https://example.org/a.png\"\ntake = [\"x/\"]\n"),
            "`take` lists members for archives",
        ),
        (
            entry("A", "x", "[[dataset.source]]\nurl = \"https://example.org/a.zip\"\nsha256 = \"ABC\"\ntake = [\"x/\"]\n"),
            "64 lowercase hex",
        ),
        (entry("A", "x", "[[dataset.source]]\nurl = \"https://example.org/{n}.png\"\n"), "without `numbered`"),
        (entry("A", "x", "[[dataset.source]]\nurl = \"ftp://example.org/a.png\"\n"), "not an http(s) URL"),
    ];
    for (body, message) in cases {
        let error = format!("{:#}", manifest(dir.path(), &body).unwrap_err());
        assert!(error.contains("sources.toml") && error.contains(message), "{error}");
    }
    let error = format!("{:#}", manifest(dir.path(), &entry("A", "x", source)).unwrap().select(&["B".to_string()]).unwrap_err());
    assert!(error.contains("no dataset `B`; known: A"), "{error}");
}

#[test]
fn the_shipped_manifest_fetches_bsd400_cbsd68_and_kodak24_by_default() {
    let manifest = Manifest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/sources.toml")).unwrap();
    let defaults: Vec<&str> = manifest.select(&[]).unwrap().iter().map(|dataset| dataset.name.as_str()).collect();
    assert_eq!(defaults, ["BSD400", "CBSD68", "Kodak24"]);
    let downloads = |name: &str| manifest.select(&[name.to_string()]).unwrap()[0].downloads().unwrap();
    assert_eq!(downloads("CBSD68")[0].take.len(), 68);
    let kodak = downloads("kodak24");
    assert_eq!((kodak.len(), kodak[0].file_name.as_str(), kodak[23].file_name.as_str()), (24, "kodim01.png", "kodim24.png"));
}
