//! `instruct-ipt serve`'s HTTP API, tested against the real server on an ephemeral localhost
//! port with the bundled models: restoring bundled samples (by instruction, task and blind),
//! parsing, every error case, requests beyond the queue, clients too slow to serve, and shutting
//! down.

#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use instruct_ipt::image::{DynamicImage, ImageFormat};
use ipt_serve::Limits;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use server::{samples, start};

fn sample(relative: &str) -> Vec<u8> {
    std::fs::read(samples().join(relative)).unwrap()
}

/// A restore form with the PNG `bytes` named `name` and the text `fields`.
fn form(bytes: Vec<u8>, name: &str, fields: &[(&str, &str)]) -> Form {
    let mut form = Form::new().part("image", Part::bytes(bytes).file_name(name.to_string()));
    for (key, value) in fields {
        form = form.text(key.to_string(), value.to_string());
    }
    form
}

/// Sends a restore request (a future that owns what it needs, so it can be spawned).
fn restore(base: &str, form: Form) -> impl Future<Output = reqwest::Response> + Send + 'static {
    let url = format!("{base}/api/restore");
    async move { reqwest::Client::new().post(url).multipart(form).send().await.unwrap() }
}

/// The JSON error of a failed response, checked to have `status` and `code`.
async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body["error"].as_str().unwrap().to_string()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|value| value.to_str().unwrap().to_string())
}

/// Mean absolute difference of two images of the same size, in 8-bit levels.
fn mean_difference(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.as_raw().len() as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_info_and_health_are_served() {
    let base = start(Limits::default()).await;
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, "content-security-policy").unwrap().contains("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>Instruct-IPT") && html.contains("id=\"restore\"") && !html.contains("https://"), "no CDN");
    let info: Value = reqwest::get(format!("{base}/api/info")).await.unwrap().json().await.unwrap();
    assert_eq!(info["tasks"].as_array().unwrap().len(), 6, "{info}");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["limits"]["max_megapixels"], 16.0);
    assert_eq!(info["load"], serde_json::json!({ "admitted": 0, "running": 0 }), "{info}");
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().text().await.unwrap(), "ok");
    expect_error(reqwest::get(format!("{base}/etc/passwd")).await.unwrap(), 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundled_sample_is_restored_by_instruction_task_and_blind() {
    let base = start(Limits::default()).await;
    let input_bytes = sample("degraded/derain/input/astronaut.png");
    let input = instruct_ipt::image::load_from_memory(&input_bytes).unwrap();
    let target = instruct_ipt::image::open(samples().join("degraded/derain/target/astronaut.png")).unwrap();
    for fields in [vec![("instruction", "please get rid of the rain")], vec![("task", "derain")], vec![], vec![("task", "auto")]] {
        let response = restore(&base, form(input_bytes.clone(), "astronaut.png", &fields)).await;
        assert_eq!(response.status(), StatusCode::OK, "{fields:?}");
        assert_eq!(header(&response, "content-type").as_deref(), Some("image/png"));
        assert_eq!(header(&response, "x-instruct-ipt-tasks").as_deref(), Some("derain"), "{fields:?}");
        let decision = header(&response, "x-instruct-ipt-decision").unwrap();
        assert!(decision.contains("derain"), "{fields:?}: {decision}");
        assert_eq!(header(&response, "x-instruct-ipt-warning"), None, "the photo has rain");
        let restored = instruct_ipt::image::load_from_memory_with_format(&response.bytes().await.unwrap(), ImageFormat::Png).unwrap();
        assert_eq!((restored.width(), restored.height()), (input.width(), input.height()));
        assert!(mean_difference(&restored, &target) < mean_difference(&input, &target), "{fields:?}: restoring brings it closer");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_with_nothing_to_do_leave_the_photo_unchanged() {
    let base = start(Limits::default()).await;
    let response = restore(&base, form(sample("clean/coffee.png"), "coffee.png", &[("instruction", "what a lovely afternoon")])).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["unchanged"], true, "{body}");
    assert!(!body["reason"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn instructions_are_parsed_into_a_distribution_and_a_decision() {
    let base = start(Limits::default()).await;
    let client = reqwest::Client::new();
    let parse = |body: Value| client.post(format!("{base}/api/parse")).json(&body).send();
    let answer: Value = parse(serde_json::json!({"instruction": "please get rid of the rain"})).await.unwrap().json().await.unwrap();
    let probabilities = answer["probabilities"].as_object().unwrap();
    assert_eq!(probabilities.len(), 7, "six tasks and none: {answer}");
    let total: f64 = probabilities.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-3, "{answer}");
    assert_eq!(answer["restore"][0]["task"], "derain", "{answer}");
    assert_eq!(answer["unchanged"], Value::Null);
    let unchanged: Value = parse(serde_json::json!({"instruction": "what a lovely afternoon"})).await.unwrap().json().await.unwrap();
    assert!(unchanged["unchanged"].is_string() && unchanged["restore"].as_array().unwrap().is_empty(), "{unchanged}");
    expect_error(parse(serde_json::json!({"sentence": "rain"})).await.unwrap(), 422, "bad_json").await;
    let long = "rain ".repeat(300);
    expect_error(parse(serde_json::json!({ "instruction": long })).await.unwrap(), 400, "instruction_too_long").await;
    let not_json = client.post(format!("{base}/api/parse")).body("rain").send().await.unwrap();
    expect_error(not_json, 415, "bad_json").await;
    // A body is read whole before it is parsed: parse takes far less than an upload.
    let padded = serde_json::json!({ "instruction": "rain", "padding": "x".repeat(100 << 10) });
    expect_error(parse(padded).await.unwrap(), 413, "too_large").await;
}

/// A PNG whose header declares `side x side` pixels and which holds none.
fn png_claiming(side: u32) -> Vec<u8> {
    let mut image = Vec::new();
    DynamicImage::new_rgb8(1, 1).write_to(&mut std::io::Cursor::new(&mut image), ImageFormat::Png).unwrap();
    // IHDR's width and height sit at bytes 16..24; fix its CRC (bytes 29..33) after them.
    image[16..20].copy_from_slice(&side.to_be_bytes());
    image[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32fast::hash(&image[12..29]);
    image[29..33].copy_from_slice(&crc.to_be_bytes());
    image
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_request_gets_a_clear_json_error_and_the_server_keeps_serving() {
    let base = start(Limits { max_upload_bytes: 300 << 10, ..Limits::default() }).await;
    let photo = sample("degraded/denoise/input/astronaut.png");
    let text = restore(&base, form(b"this is not an image".to_vec(), "notes.txt", &[("task", "denoise")])).await;
    assert!(expect_error(text, 415, "not_an_image").await.contains("notes.txt"));
    let bomb = restore(&base, form(png_claiming(20_000), "bomb.png", &[("task", "denoise")])).await;
    assert!(expect_error(bomb, 413, "too_large").await.contains("20000x20000"));
    let heavy = restore(&base, form(vec![0; 400 << 10], "heavy.png", &[("task", "denoise")])).await;
    expect_error(heavy, 413, "too_large").await;
    let unknown = restore(&base, form(photo.clone(), "a.png", &[("task", "sharpen")])).await;
    assert!(expect_error(unknown, 400, "unknown_task").await.contains("sharpen"));
    let both = restore(&base, form(photo.clone(), "a.png", &[("task", "denoise"), ("instruction", "remove the noise")])).await;
    expect_error(both, 400, "conflicting_request").await;
    let misspelt = restore(&base, form(photo.clone(), "a.png", &[("taks", "denoise")])).await;
    expect_error(misspelt, 400, "unknown_field").await;
    let no_image =
        reqwest::Client::new().post(format!("{base}/api/restore")).multipart(Form::new().text("task", "denoise")).send().await.unwrap();
    expect_error(no_image, 400, "missing_image").await;
    let empty = restore(&base, form(Vec::new(), "empty.png", &[("task", "denoise")])).await;
    expect_error(empty, 400, "missing_image").await;
    // An image of one pixel is restored at its size (padding to the network's multiple).
    let mut tiny = Vec::new();
    DynamicImage::new_rgb8(1, 1).write_to(&mut std::io::Cursor::new(&mut tiny), ImageFormat::Png).unwrap();
    let one_pixel = restore(&base, form(tiny, "dot.png", &[("task", "denoise")])).await;
    assert_eq!(one_pixel.status(), StatusCode::OK);
    let dot = instruct_ipt::image::load_from_memory(&one_pixel.bytes().await.unwrap()).unwrap();
    assert_eq!((dot.width(), dot.height()), (1, 1));
    let not_a_form = reqwest::Client::new().post(format!("{base}/api/restore")).body(photo.clone()).send().await.unwrap();
    expect_error(not_a_form, 400, "bad_form").await;
    // A path in the file name is only a name: it is never opened.
    let traversal = restore(&base, form(b"GIF89a".to_vec(), "../../etc/passwd", &[("task", "denoise")])).await;
    let message = expect_error(traversal, 415, "not_an_image").await;
    assert!(message.starts_with("passwd:"), "{message}");
    // Asked to derain a noisy photo: a warning, or with strict an error.
    let asked = restore(&base, form(photo.clone(), "a.png", &[("task", "derain")])).await;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(header(&asked, "x-instruct-ipt-warning").unwrap().contains("no rain"));
    let strict = restore(&base, form(photo.clone(), "a.png", &[("task", "derain"), ("strict", "true")])).await;
    assert!(expect_error(strict, 422, "doubted").await.contains("noise"));

    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().text().await.unwrap(), "ok");
    let fine = restore(&base, form(photo, "a.png", &[("task", "denoise")])).await;
    assert_eq!(fine.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_queue_are_refused_with_retry_after_and_the_rest_are_served() {
    let limits = Limits { workers: 1, queue: 1, upload_timeout: Duration::from_secs(5), ..Limits::default() };
    let base = start(limits).await;
    // Two uploads that stall hold both places (one worker, one waiting): a request takes its
    // place before its upload is read.
    let holders: Vec<_> = (0..2).map(|_| tokio::spawn(send_raw(&base, stalled_upload(), Duration::from_secs(30)))).collect();
    wait_until_admitted(&base, 2, || false).await;
    let photo = sample("degraded/denoise/input/chelsea.png");
    let refused = restore(&base, form(photo.clone(), "chelsea.png", &[("task", "denoise")])).await;
    let retry: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    expect_error(refused, 503, "busy").await;
    for holder in holders {
        let (answer, _) = holder.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let served = restore(&base, form(photo, "chelsea.png", &[("task", "denoise")])).await;
    assert_eq!(served.status(), StatusCode::OK, "the places are given back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_its_time_limit_is_answered_and_the_server_recovers() {
    let base = start(Limits { timeout: Duration::from_millis(1), ..Limits::default() }).await;
    let response = restore(&base, form(sample("degraded/denoise/input/coffee.png"), "coffee.png", &[("task", "denoise")])).await;
    expect_error(response, 503, "timeout").await;
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().text().await.unwrap(), "ok");
}

/// A restore request whose headers promise a 100 kB form of which a tenth arrives, then nothing.
fn stalled_upload() -> Vec<u8> {
    let boundary = "XyZ";
    let mut sent = format!(
        "POST /api/restore HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: 100000\r\n\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
    )
    .into_bytes();
    sent.extend(vec![0u8; 10_000]);
    sent
}

/// Opens a connection to `base`, sends `sent` and reads until the server closes it or `wait`
/// passes: what came back, and whether the server closed it.
fn send_raw(base: &str, sent: Vec<u8>, wait: Duration) -> impl Future<Output = (String, bool)> + Send + 'static {
    let address = base.trim_start_matches("http://").to_string();
    let exchange = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(&sent).unwrap();
        stream.set_read_timeout(Some(wait)).unwrap();
        let mut received = Vec::new();
        let closed = stream.read_to_end(&mut received).is_ok();
        (String::from_utf8_lossy(&received).into_owned(), closed)
    });
    async move { exchange.await.unwrap() }
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_send_headers_slowly_or_not_at_all_are_cut_off_and_others_served() {
    let base = start(Limits { header_timeout: Duration::from_millis(300), connections: 2, ..Limits::default() }).await;
    // Both connections the server takes at once, held by clients that never finish their
    // headers: without the header deadline they would hold them for good.
    let stalled = b"POST /api/restore HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    let holders: Vec<_> = (0..2).map(|_| tokio::spawn(send_raw(&base, stalled.clone(), Duration::from_secs(20)))).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let health = tokio::time::timeout(Duration::from_secs(10), reqwest::get(format!("{base}/healthz"))).await;
    assert_eq!(health.expect("served once the stalled connections are cut off").unwrap().text().await.unwrap(), "ok");
    for holder in holders {
        let (_, closed) = holder.await.unwrap();
        assert!(closed, "the server closed the stalled connection");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_slower_than_its_limit_is_answered_408_and_the_server_recovers() {
    let base = start(Limits { upload_timeout: Duration::from_millis(300), ..Limits::default() }).await;
    let (answer, _) = send_raw(&base, stalled_upload(), Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"upload_timeout\""), "{answer}");
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().text().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutting_down_finishes_the_request_in_flight_and_takes_no_more() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ipt_serve::serve(listener, server::models(), Limits::default(), async {
        stopped.await.unwrap();
    }));
    let in_flight = tokio::spawn(restore(&base, form(sample("degraded/denoise/input/coffee.png"), "coffee.png", &[("task", "denoise")])));
    wait_until_admitted(&base, 1, || in_flight.is_finished()).await;
    stop.send(()).unwrap();
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the request in flight is answered");
    assert!(!response.bytes().await.unwrap().is_empty());
    tokio::time::timeout(Duration::from_secs(30), server).await.expect("the server stops once it is answered").unwrap();
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "nothing listens any more");
}

/// Waits (up to 30 s) until the server's queue holds `admitted` requests, by `/api/info`, or
/// until `answered()` says the requests were answered already (a fast machine).
async fn wait_until_admitted(base: &str, admitted: u64, answered: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info: Value = reqwest::get(format!("{base}/api/info")).await.unwrap().json().await.unwrap();
        if info["load"]["admitted"].as_u64() == Some(admitted) || answered() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {admitted} admitted: {info}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
