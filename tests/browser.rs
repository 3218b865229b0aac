//! The demo page in a real headless Chromium, driven through WebDriver (`chromedriver`,
//! `fantoccini`): upload a bundled rainy sample with an instruction, wait for the result, check
//! the restored image is shown and differs from the input, and that a bad upload is shown as a
//! message. Skipped, saying so, where Debian's `chromium` and `chromium-driver` are not
//! installed (`.ci/run` installs them).
//!
//! The test saves its screenshot in the target folder; with `INSTRUCT_IPT_UPDATE_SCREENSHOT=1`
//! it also replaces `docs/serve-page.png`, the one in the README.

#[path = "support/server.rs"]
mod server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use ipt_serve::Limits;
use serde_json::{Value, json};
use server::{samples, start};

/// Where Debian installs them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver, stopped when dropped.
struct Driver {
    process: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver on a free localhost port and waits until it answers.
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port} within 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { process, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A headless Chromium session.
async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session starts")
}

/// Evaluates `script` (a function body) in the page until it returns `true`, or fails after
/// `seconds` naming `what`.
async fn wait_until(client: &Client, script: &str, seconds: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if client.execute(script, vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        let status = client.execute("return document.getElementById('status-text').textContent", vec![]).await.unwrap();
        assert!(Instant::now() < deadline, "{what} did not happen within {seconds} s (status: {status})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Mean absolute difference (8-bit levels) between the shown before and after images.
const DIFFERENCE: &str = r#"
    const draw = (image) => {
        const canvas = document.createElement("canvas");
        canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        return context.getImageData(0, 0, canvas.width, canvas.height).data;
    };
    const before = draw(document.getElementById("before")), after = draw(document.getElementById("after"));
    if (before.length !== after.length) return -1;
    let total = 0;
    for (let i = 0; i < before.length; i += 4) {
        total += Math.abs(before[i] - after[i]) + Math.abs(before[i + 1] - after[i + 1]) + Math.abs(before[i + 2] - after[i + 2]);
    }
    return total / (before.length / 4 * 3);
"#;

/// Whether the browser test can run here; says why not when it cannot.
fn chromium_installed() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER].into_iter().filter(|path| !Path::new(path).exists()).collect();
    if !missing.is_empty() {
        eprintln!("skipped: {} not installed (apt-get install chromium chromium-driver; .ci/run does)", missing.join(" and "));
    }
    missing.is_empty()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_restores_an_uploaded_photo_and_shows_errors_as_messages() {
    if !chromium_installed() {
        return;
    }
    let base = start(Limits::default()).await;
    let driver = Driver::start();
    let client = browser(&driver).await;
    client.goto(&base).await.unwrap();
    wait_until(&client, "return document.getElementById('info').textContent.includes('tasks:')", 20, "the info line").await;

    let photo = samples().join("degraded/derain/input/chelsea.png").canonicalize().unwrap();
    client.find(Locator::Id("file")).await.unwrap().send_keys(&photo.display().to_string()).await.unwrap();
    client.find(Locator::Id("instruction")).await.unwrap().send_keys("please get rid of the rain").await.unwrap();
    wait_until(&client, "return document.getElementById('understood').textContent.includes('derain')", 20, "the parse preview").await;
    client.find(Locator::Id("restore")).await.unwrap().click().await.unwrap();
    wait_until(&client, "return document.getElementById('after').style.visibility === 'visible'", 180, "the restored image").await;

    let status = client.find(Locator::Id("status-text")).await.unwrap().text().await.unwrap();
    assert!(status.starts_with("Done in") && status.contains("derain"), "{status}");
    let download = client.find(Locator::Id("download")).await.unwrap();
    assert!(download.is_displayed().await.unwrap());
    assert_eq!(download.attr("download").await.unwrap().as_deref(), Some("chelsea-restored.png"));
    let difference = client.execute(DIFFERENCE, vec![]).await.unwrap().as_f64().unwrap();
    assert!(difference > 1.0, "the restored image differs from the input: mean difference {difference} levels");
    let screenshot = client.screenshot().await.unwrap();
    save_screenshot(&screenshot);

    // A file that is not an image: a message on the page, no alert.
    let folder = tempfile::tempdir().unwrap();
    let notes = folder.path().join("notes.png");
    std::fs::write(&notes, "shopping list").unwrap();
    client.find(Locator::Id("file")).await.unwrap().send_keys(&notes.display().to_string()).await.unwrap();
    client.find(Locator::Id("restore")).await.unwrap().click().await.unwrap();
    wait_until(&client, "return document.getElementById('error').style.display === 'block'", 60, "the error message").await;
    let message = client.find(Locator::Id("error")).await.unwrap().text().await.unwrap();
    assert!(message.contains("notes.png") && message.contains("cannot read image"), "{message}");
    client.close().await.unwrap();
}

/// Saves the page's screenshot in the target folder, and as the README's when asked to.
fn save_screenshot(png: &[u8]) {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-page.png");
    std::fs::write(&target, png).unwrap();
    if std::env::var_os("INSTRUCT_IPT_UPDATE_SCREENSHOT").is_some() {
        let readme_copy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/serve-page.png");
        std::fs::write(&readme_copy, png).unwrap();
    }
}
