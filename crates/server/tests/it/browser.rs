//! The web console in headless Chromium (Debian's chromium and chromium-driver, installed by
//! scripts/install-browser-deps.sh) against the real `campana` binary. A failing test leaves a
//! screenshot and the page's HTML in `<target>/test-artifacts/`.

use crate::common;

use common::{Server, ADMIN_PASSWORD};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a step waits for.
const WAIT_S: u64 = 20;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// chromedriver on a free port with one headless Chromium session (cloned handles share it).
#[derive(Clone)]
struct Browser {
    client: Client,
    _driver: Arc<Driver>,
    base: String,
}

/// The chromedriver process, ended when the last handle goes.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    async fn start(base: &str) -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "browser tests need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); \
             run scripts/install-browser-deps.sh (scripts/test runs it)"
        );
        let port = free_port();
        let driver = Driver(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000", "--lang=en-US"],
                "prefs": {"intl.accept_languages": "en-US,en"}
            }
        }))
        .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let mut last_err = String::new();
        for _ in 0..100 {
            let conn = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(conn).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => return Browser { client, _driver: Arc::new(driver), base: base.to_string() },
                Err(e) => last_err = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start a Chromium session: {last_err}");
    }

    async fn goto(&self, path: &str) -> TestResult {
        Ok(self.client.goto(&format!("{}{path}", self.base)).await?)
    }
    async fn find(&self, css: &str) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
        self.client.wait().at_most(Duration::from_secs(WAIT_S)).for_element(Locator::Css(css)).await
    }
    async fn fill(&self, css: &str, text: &str) -> TestResult {
        let e = self.find(css).await?;
        e.clear().await?;
        Ok(e.send_keys(text).await?)
    }
    async fn select(&self, css: &str, value: &str) -> TestResult {
        Ok(self.find(css).await?.select_by_value(value).await?)
    }
    async fn click(&self, css: &str) -> TestResult {
        Ok(self.find(css).await?.click().await?)
    }
    async fn text(&self, css: &str) -> Result<String, fantoccini::error::CmdError> {
        self.find(css).await?.text().await
    }
    async fn source(&self) -> Result<String, fantoccini::error::CmdError> {
        self.client.source().await
    }
    /// Waits until the page's HTML contains `needle`.
    async fn wait_for_text(&self, needle: &str) -> TestResult {
        for _ in 0..(WAIT_S * 10) {
            if self.source().await?.contains(needle) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("the page never showed {needle:?}").into())
    }
    async fn login(&self, user: &str, password: &str) -> TestResult {
        self.goto("/login").await?;
        self.fill("input[name=username]", user).await?;
        self.fill("input[name=password]", password).await?;
        self.click("#login-submit").await?;
        self.find("#logout").await?;
        Ok(())
    }
    /// The browser's session as a `Cookie` header, to check downloads and status codes over HTTP.
    async fn cookie_header(&self) -> Result<String, fantoccini::error::CmdError> {
        let cookies = self.client.get_all_cookies().await?;
        Ok(cookies.iter().map(|c| format!("{}={}", c.name(), c.value())).collect::<Vec<_>>().join("; "))
    }
    async fn http_get(&self, path: &str) -> Result<(u16, String), Box<dyn std::error::Error + Send + Sync>> {
        let r = reqwest::Client::new().get(format!("{}{path}", self.base)).header("cookie", self.cookie_header().await?).send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }
    async fn screenshot(&self, name: &str) {
        let dir = artifacts_dir();
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
        if let Ok(html) = self.source().await {
            let _ = std::fs::write(dir.join(format!("{name}.html")), html);
        }
        eprintln!("browser test {name} failed: screenshot and HTML in {}", dir.display());
    }
}

fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().map(|p| p.join("test-artifacts")).unwrap_or_else(|| PathBuf::from("test-artifacts"))
}

/// Runs a scenario; on an error or a panic keeps a screenshot, then fails the test.
async fn run<F, Fut>(name: &str, server: &Server, scenario: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = TestResult>,
{
    let b = Browser::start(&server.base).await;
    let failure = match std::panic::AssertUnwindSafe(scenario(b.clone())).catch_unwind().await {
        Ok(Ok(())) => {
            let _ = b.client.clone().close().await;
            return;
        }
        Ok(Err(e)) => e.to_string(),
        Err(panic) => {
            panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
        }
    };
    b.screenshot(name).await;
    panic!("browser test {name}: {failure}");
}

/// A new administrator's first hour: sign in, create a profile (after a refused value) and a
/// list and a campaign, import a CSV with bad rows, download the error file, start the campaign.
#[tokio::test]
async fn administrator_first_hour_sqlite() {
    administrator_first_hour("sqlite").await;
}

#[tokio::test]
async fn administrator_first_hour_postgres() {
    administrator_first_hour("postgres").await;
}

async fn administrator_first_hour(backend: &str) {
    // Simulated telephony and two simulated agents, who join the agent group the administrator
    // creates (there is none when the server starts).
    let server = Server::start_args(backend, &["serve", "--telephony", "sim", "--sim-agents", "2"]).await;
    let csv_dir = tempfile::tempdir().unwrap();
    let csv = csv_dir.path().join("spring.csv");
    // The contacts' zone is one where it is daytime now, so the started campaign dials them.
    let zone = common::open_zone();
    std::fs::write(
        &csv,
        format!(
            "first_name,last_name,phone,zip,time_zone\n\
             Ana,Garcia,+12125550143,10001,{zone}\n\
             Ben,Lee,+13125550100,60601,{zone}\n\
             Cleo,Diaz,not-a-number,60601,{zone}\n\
             Dan,Park,+14155550123,94105,{zone}\n\
             Eve,Moss,,10001,{zone}\n\
             Fay,Ng,+16175550199,02108,{zone}\n"
        ),
    )
    .unwrap();
    run(&format!("administrator_first_hour_{backend}"), &server, |b| async move {
        b.login("admin", ADMIN_PASSWORD).await?;
        // An agent group: a predictive campaign needs one to start.
        b.goto("/agent-groups/new").await?;
        b.fill("#f-name", "Sales floor").await?;
        b.click("#save").await?;
        b.wait_for_text("Sales floor").await?;
        // A settings profile; a bad value is refused with the field named and the input kept.
        b.goto("/settings-profiles/new").await?;
        b.fill("#f-name", "Evening predictive").await?;
        b.select("#f-settings-dialing_mode", "predictive").await?;
        b.fill("#f-settings-abandon_rate_max", "3").await?;
        b.click("#save").await?;
        let errors = b.text("#form-errors").await?;
        assert!(errors.contains("settings.abandon_rate_max"), "{errors}");
        assert_eq!(b.find("#f-name").await?.prop("value").await?.as_deref(), Some("Evening predictive"));
        b.fill("#f-settings-abandon_rate_max", "0.03").await?;
        let group = b.client.find(Locator::XPath("//select[@id='f-settings-agent_group_id']/option[contains(., 'Sales floor')]")).await?;
        b.select("#f-settings-agent_group_id", &group.attr("value").await?.unwrap()).await?;
        b.click("#save").await?;
        b.wait_for_text("Evening predictive").await?;
        assert!(b.client.current_url().await?.path().ends_with("/settings-profiles"));

        // A contact list.
        b.goto("/contact-lists/new").await?;
        b.fill("#f-name", "Spring leads").await?;
        b.fill("#f-default_country", "US").await?;
        b.click("#save").await?;
        b.wait_for_text("Spring leads").await?;

        // A campaign with that profile and list.
        b.goto("/campaigns/new").await?;
        b.fill("#f-name", "Spring renewals").await?;
        let profile = b.client.find(Locator::XPath("//select[@id='f-profile_id']/option[contains(., 'Evening predictive')]")).await?;
        let profile_id = profile.attr("value").await?.unwrap();
        b.select("#f-profile_id", &profile_id).await?;
        b.click("#f-contact_list_ids input[type=checkbox]").await?;
        // Around the clock, every day, so the test dials whenever it runs.
        b.client
            .execute("document.getElementById('f-daily_hours-start').value = '00:00'; document.getElementById('f-daily_hours-end').value = '23:59';", vec![])
            .await?;
        b.fill("#f-time_zone", "UTC").await?;
        for day in ["sat", "sun"] {
            let boxed = b.find(&format!("#f-weekdays input[value={day}]")).await?;
            if boxed.prop("checked").await?.as_deref() != Some("true") {
                boxed.click().await?;
            }
        }
        b.click("#save").await?;
        b.wait_for_text("Spring renewals").await?;
        let row = b.text("#group-none-table").await?;
        assert!(row.contains("Spring renewals") && row.to_lowercase().contains("draft"), "{row}");

        // Import the CSV: upload, the guessed column mapping, progress until done.
        b.goto("/contact-lists").await?;
        b.click("#items a.button").await?;
        b.click("#import").await?;
        b.find("#file").await?.send_keys(csv.to_str().unwrap()).await?;
        b.click("#upload").await?;
        assert_eq!(b.find("#role-2").await?.prop("value").await?.as_deref(), Some("phone:home"));
        assert_eq!(b.find("#role-3").await?.prop("value").await?.as_deref(), Some("postal_code"));
        b.click("#start-import").await?;
        b.find("#progress[data-state=completed]").await?;
        assert_eq!(b.text("#rows-rejected").await?, "2");
        assert!(b.text("#customers-created").await?.starts_with("4 "));
        // The error file, with the browser's own session.
        let href = b.find("#errors-csv").await?.attr("href").await?.unwrap();
        let (status, body) = b.http_get(&href).await?;
        assert_eq!(status, 200);
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], "row,column,value,reason");
        assert_eq!(lines.len(), 3, "{body}");
        assert!(lines[1].starts_with("4,phone,not-a-number,"), "{body}");
        assert!(lines[2].starts_with("6,phone,"), "{body}");
        b.click("#to-records").await?;
        b.wait_for_text("+12125550143").await?;

        // Start the campaign from the list, confirming, and see its state change.
        b.goto("/campaigns").await?;
        b.click("#group-none-table button.act-start").await?;
        b.client.accept_alert().await?;
        b.find("[data-state=running]").await?;
        b.goto("/campaigns").await?;
        b.find("#group-none-table [data-state=running]").await?;
        b.find("#group-none-table button.act-pause").await?;
        // The campaign page: effective settings with their source, the compliance preview.
        b.click("#group-none-table a[href^='/campaigns/']").await?;
        b.find("#preview-summary").await?;
        let effective = b.text("#effective").await?;
        assert!(effective.contains("predictive") && effective.contains("profile"), "{effective}");
        // Watch progress move: the live panel's dials climb without a reload, and the chart
        // draws today's intervals.
        let mut dials = 0;
        for _ in 0..(WAIT_S * 10) {
            let today = b.text("#pg-today").await?;
            dials = today.split('·').next().and_then(|d| d.trim().parse::<i64>().ok()).unwrap_or(0);
            if dials > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(dials > 0, "no dial shown on the campaign page");
        b.find("#pg-chart rect.pg-dials").await?;
        b.find("#agents-table").await?;
        Ok(())
    })
    .await;
}

/// A supervisor whose campaigns profile lists one campaign never sees the other, in any page.
#[tokio::test]
async fn supervisor_sees_only_their_campaigns() {
    let server = Server::start("sqlite").await;
    let api = server.client();
    let mut ids = Vec::new();
    let mut lists = Vec::new();
    for name in ["Visible campaign", "Hidden campaign"] {
        let (s, list) = common::post_json(&api, server.url("/api/v1/contact-lists"), json!({"name": format!("{name} list")})).await;
        assert_eq!(s, 201, "{list}");
        let (s, c) = common::post_json(
            &api,
            server.url("/api/v1/campaigns"),
            json!({"name": name, "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon","tue","wed","thu","fri"],
                   "time_zone": "America/Chicago", "contact_list_ids": [list["id"]]}),
        )
        .await;
        assert_eq!(s, 201, "{c}");
        ids.push(c["id"].as_i64().unwrap());
        lists.push(list["id"].as_i64().unwrap());
    }
    let (_, roles) = common::get_json(&api, server.url("/api/v1/roles")).await;
    let supervisor = roles["items"].as_array().unwrap().iter().find(|r| r["name"] == "supervisor").unwrap()["id"].clone();
    let (s, u) = common::post_json(
        &api,
        server.url("/api/v1/users"),
        json!({"username": "sup1", "role_id": supervisor, "password": "supervisor-password",
               "campaigns_profile": {"scope": "only", "campaign_ids": [ids[0]]}}),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let (visible, hidden, hidden_list) = (ids[0], ids[1], lists[1]);
    run("supervisor_sees_only_their_campaigns", &server, |b| async move {
        b.login("sup1", "supervisor-password").await?;
        b.goto("/campaigns").await?;
        let page = b.source().await?;
        assert!(page.contains("Visible campaign"), "the supervisor's own campaign is listed");
        assert!(!page.contains("Hidden campaign"), "a campaign outside the profile is not listed");
        assert!(!page.contains("id=\"new\""), "a supervisor with listed campaigns cannot create one");
        // Neither the page nor anything under it exists for them.
        for path in [
            format!("/campaigns/{hidden}"),
            format!("/campaigns/{hidden}/edit"),
            format!("/campaigns/{hidden}/preview"),
            format!("/campaigns/{hidden}/available"),
            format!("/contact-lists/{hidden_list}/records"),
            format!("/contact-lists/{hidden_list}"),
        ] {
            let (status, body) = b.http_get(&path).await?;
            assert_eq!(status, 404, "{path}: {status}");
            assert!(!body.contains("Hidden campaign"), "{path} leaks the campaign's name");
        }
        b.goto(&format!("/campaigns/{hidden}")).await?;
        b.wait_for_text("Not found").await?;
        let lists_page = b.http_get("/contact-lists").await?.1;
        assert!(lists_page.contains("Visible campaign list") && !lists_page.contains("Hidden campaign list"));
        // Users and roles need a privilege the supervisor role lacks.
        assert_eq!(b.http_get("/users").await?.0, 403);
        assert!(!b.source().await?.contains("href=\"/users\""), "the navigation hides what the role cannot open");
        // Starting the hidden campaign with a valid CSRF token is refused as not found.
        b.goto(&format!("/campaigns/{visible}")).await?;
        let csrf = b.find("input[name=csrf_token]").await?.prop("value").await?.unwrap();
        let r = reqwest::Client::new()
            .post(format!("{}/campaigns/{hidden}/start", b.base))
            .header("cookie", b.cookie_header().await?)
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await?;
        assert_eq!(r.status(), 404);
        // Without the CSRF token even their own campaign is refused.
        let r = reqwest::Client::new()
            .post(format!("{}/campaigns/{visible}/start", b.base))
            .header("cookie", b.cookie_header().await?)
            .send()
            .await?;
        assert_eq!(r.status(), 403);
        Ok(())
    })
    .await;
    let (_, c) = common::get_json(&api, server.url(&format!("/api/v1/campaigns/{hidden}"))).await;
    assert_eq!(c["state"], "draft", "the hidden campaign was not started");
}

/// Choosing Spanish shows Spanish labels, kept across pages; English comes back the same way.
#[tokio::test]
async fn spanish_labels() {
    let server = Server::start("sqlite").await;
    run("spanish_labels", &server, |b| async move {
        b.login("admin", ADMIN_PASSWORD).await?;
        assert_eq!(b.text("h1").await?, "Campaigns");
        b.click("#lang-es").await?;
        b.wait_for_text("Campañas sin grupo").await?;
        assert_eq!(b.text("h1").await?, "Campañas");
        assert!(b.text("header nav").await?.contains("Listas de contactos"));
        b.goto("/settings-profiles/new").await?;
        b.wait_for_text("Modo de marcación").await?;
        assert!(b.text("#save").await?.contains("Guardar"));
        b.click("#lang-en").await?;
        b.wait_for_text("Dialing mode").await?;
        Ok(())
    })
    .await;
}

/// The session cookie is HttpOnly and SameSite always, and Secure when the request came over
/// TLS (a proxy's `X-Forwarded-Proto: https`), from the console's form and from the API alike.
#[tokio::test]
async fn session_cookie_is_secure_behind_tls() {
    let server = Server::start("sqlite").await;
    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for tls in [false, true] {
        let mut form = c.post(server.url("/login")).form(&[("username", "admin"), ("password", ADMIN_PASSWORD)]);
        let mut api = c.post(server.url("/api/v1/auth/login")).json(&json!({"username": "admin", "password": ADMIN_PASSWORD}));
        if tls {
            form = form.header("x-forwarded-proto", "https");
            api = api.header("x-forwarded-proto", "https");
        }
        for r in [form.send().await.unwrap(), api.send().await.unwrap()] {
            let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
            assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
            assert_eq!(cookie.contains("; Secure"), tls, "{cookie}");
        }
    }
}

impl Browser {
    /// Waits until an element matching `css` is shown (present and displayed), up to `wait_s`.
    async fn visible(&self, css: &str, wait_s: u64) -> Result<fantoccini::elements::Element, Box<dyn std::error::Error + Send + Sync>> {
        for _ in 0..(wait_s * 10) {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                if e.is_displayed().await.unwrap_or(false) {
                    return Ok(e);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{css} was never shown within {wait_s} s").into())
    }
    /// Clicks `css` once it is shown.
    async fn press(&self, css: &str) -> TestResult {
        Ok(self.visible(css, WAIT_S).await?.click().await?)
    }
    /// Clicks `css` if it is shown within a second (a state that may have moved on).
    async fn press_if_shown(&self, css: &str) -> TestResult {
        if let Ok(e) = self.visible(css, 1).await {
            let _ = e.click().await;
        }
        Ok(())
    }
    /// The agent desktop's state (`data-state` of the state line).
    async fn desk_state(&self) -> Result<String, fantoccini::error::CmdError> {
        Ok(self.find("#state-line").await?.attr("data-state").await?.unwrap_or_default())
    }
}

/// How long a simulated customer may take to answer one of the test's calls (several calls
/// may ring out first; the test's campaign rings for 8 s, the demo's for 25 s).
const CALL_WAIT_S: u64 = 300;

/// An agent's call on the agent desktop, live (server-sent events, no reloads): log in to the
/// dialer, ready, a pause with a typed code, ready again, the call arrives with the contact,
/// local time and script, a manager tag, hang-up, the wrap-up countdown (the profile's
/// `wrap_up_s`), a callback disposition with notes and a time shown in the contact's zone,
/// back to ready; then the API has the disposition, the notes, the tag and the callback.
#[tokio::test]
async fn agent_takes_a_call_sqlite() {
    agent_takes_a_call("sqlite").await;
}

#[tokio::test]
async fn agent_takes_a_call_postgres() {
    agent_takes_a_call("postgres").await;
}

async fn agent_takes_a_call(backend: &str) {
    let server = Server::start_args(backend, &["serve", "--telephony", "sim", "--sim-agents", "0"]).await;
    let api = server.client();
    let (_, team) = common::post_json(&api, server.url("/api/v1/agent-groups"), json!({"name": "Team"})).await;
    let (s, u) = common::post_json(
        &api,
        server.url("/api/v1/users"),
        json!({"username": "ana", "display_name": "Ana", "role_id": 3, "campaigns_profile": {"scope": "all"},
               "agent_group_ids": [team["id"]], "password": "agent-password"}),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let (_, script) =
        common::post_json(&api, server.url("/api/v1/scripts"), json!({"name": "Hello", "body": "Hello {{name}}, this is {{agent}}."}))
            .await;
    let (s, cb) = common::post_json(
        &api,
        server.url("/api/v1/dispositions"),
        json!({"name": "Interested, call back", "colour": "#f9a825", "is_callback": true}),
    )
    .await;
    assert_eq!(s, 201, "{cb}");
    let (_, tag) = common::post_json(&api, server.url("/api/v1/manager-tags"), json!({"name": "Escalate", "colour": "#6a1b9a"})).await;
    let zone = common::open_zone();
    let (cb_id, tag_id) = (cb["id"].as_i64().unwrap(), tag["id"].as_i64().unwrap());
    let list = std::sync::Arc::new(std::sync::Mutex::new(0));
    let (list_id, srv) = (list.clone(), &server);
    run(&format!("agent_takes_a_call_{backend}"), &server, |b| async move {
        b.login("ana", "agent-password").await?;
        b.click("header nav a[href='/agent']").await?;
        b.press("#dialer-login").await?;
        b.find("#state-line[data-state=not_ready]").await?;
        b.press("#ready").await?;
        b.find("#state-line[data-state=ready]").await?;
        // Not ready with a typed pause code, then ready again.
        b.select("#pause-code", "").await?;
        b.visible("#pause-other", WAIT_S).await?.send_keys("coaching").await?;
        b.press("#not-ready").await?;
        b.find("#state-line[data-state=not_ready]").await?;
        assert_eq!(b.text("#state").await?, "Not ready (coaching)");
        b.press("#ready").await?;
        b.find("#state-line[data-state=ready]").await?;

        // A campaign starts (with a long wrap-up, so the countdown is there while the agent
        // fills the form); the answered call arrives on screen by itself.
        let (_, lid) = common::campaign(
            srv,
            "Renewals",
            30,
            json!({"dialing_mode": "progressive", "agent_group_id": team["id"], "script_id": script["id"], "wrap_up_s": 600,
                   "ring_timeout_s": 8}),
        )
        .await;
        *list_id.lock().unwrap() = lid;
        let name = b.visible("#contact-name", CALL_WAIT_S).await?.text().await?;
        assert!(name.starts_with("Customer "), "{name}");
        assert_eq!(b.text("#script").await?, format!("Hello {name}, this is Ana."));
        assert!(b.text("#contact-phone").await?.starts_with("+1212555"));
        assert_eq!(b.text("#contact-phone-type").await?, "home");
        assert!(b.text("#contact-local-time").await?.contains(zone), "the contact's local time in {zone}");
        b.press(&format!("#tags button[data-tag-id='{tag_id}']")).await?;
        b.find(&format!("#tags button.applied[data-tag-id='{tag_id}']")).await?;
        // Hang up (unless the simulated customer already did): the wrap-up countdown runs.
        if b.desk_state().await? == "on_call" {
            b.press("#hang-up").await?;
        }
        b.find("#state-line[data-state=wrap_up]").await?;
        let countdown = b.visible("#wrap-countdown", WAIT_S).await?.text().await?;
        assert!(countdown.contains("s left, then ready again"), "{countdown}");

        // A callback disposition: the picker appears, with the contact's time for the chosen one.
        b.select("#disposition", &cb_id.to_string()).await?;
        b.visible("#callback", WAIT_S).await?;
        b.fill("#notes", "wants the family plan").await?;
        b.client
            .execute(
                "var d = new Date(Date.now() + 2 * 3600 * 1000); var p = function (n) { return (n < 10 ? '0' : '') + n; };
                 var e = document.getElementById('callback-at');
                 e.value = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
                 e.dispatchEvent(new Event('input'));",
                vec![],
            )
            .await?;
        let contact_time = b.text("#callback-contact-time").await?;
        assert!(contact_time.contains(zone), "{contact_time}");
        b.click("#callback-campaign").await?;
        b.click("#dispose-submit").await?;
        // Back to ready (the next call may follow soon after).
        b.find("#state-line[data-state=ready]").await?;
        assert!(!b.find("#desk-error").await?.is_displayed().await?, "{}", b.text("#desk-error").await?);
        Ok(())
    })
    .await;

    // The attempt has the disposition, the notes and the tag; the record has the callback.
    let lid = *list.lock().unwrap();
    let (_, page) = common::get_json(&api, server.url(&format!("/api/v1/contact-lists/{lid}/records?limit=100"))).await;
    let rec =
        page["items"].as_array().unwrap().iter().find(|r| r["record_type"] == "campaign_callback").expect("a record with the callback");
    assert!(rec["callback_at"].is_string(), "{rec}");
    let rid = rec["id"].as_i64().unwrap();
    let (_, attempts) = common::get_json(&api, server.url(&format!("/api/v1/contact-lists/{lid}/records/{rid}/attempts"))).await;
    let a = &attempts[0];
    assert_eq!(a["result"], "agent_callback", "{attempts}");
    assert_eq!(a["disposition_id"], cb_id, "{a}");
    assert_eq!(a["notes"], "wants the family plan");
    let (_, log) = common::get_json(&api, server.url("/api/v1/audit?entity_type=call_attempt")).await;
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["disposition", "tag"], "{log}");
    assert_eq!(log["items"][1]["entity_id"], a["call_id"].to_string());
}

/// The README's screenshots, from `campana demo` (its data, simulated agents beside a person
/// on the agent desktop): the campaign list, and the agent desktop with a call on
/// screen, at 1280x800. Written to `<target>/test-artifacts/readme/`; with
/// `CAMPANA_README_SCREENSHOTS=1` to `docs/img/` (how the committed ones were made).
#[tokio::test]
async fn readme_screenshots() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/campana.db", dir.path().display());
    // Three simulated agents (one per agent group of the demo) beside the person, so the
    // person's first answered call comes sooner than beside the demo's twelve.
    let server = Server::start_with(dir, url, &["demo", "--records", "2000", "--sim-agents", "3"]);
    let out = if std::env::var_os("CAMPANA_README_SCREENSHOTS").is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/img")
    } else {
        artifacts_dir().join("readme")
    };
    std::fs::create_dir_all(&out).unwrap();
    run("readme_screenshots", &server, |b| async move {
        b.client.set_window_size(1280, 800).await?;
        b.login("admin", "campana-admin").await?;
        b.goto("/campaigns").await?;
        b.wait_for_text("Plan renewals").await?;
        // The "available now" figures load with each row.
        b.find("#group-none-table").await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        std::fs::write(out.join("campaigns.png"), b.client.screenshot().await?)?;
        b.click("#logout").await?;

        b.login("agent", "campana-agent").await?;
        b.goto("/agent").await?;
        b.press("#dialer-login").await?;
        b.press("#ready").await?;
        // A preview offer (the demo has a preview campaign) is taken; then the call is on screen.
        for _ in 0..(CALL_WAIT_S * 10) {
            match b.desk_state().await?.as_str() {
                "on_call" => break,
                "preview" => {
                    b.press_if_shown("#preview-call").await?;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(b.desk_state().await?, "on_call");
        b.fill("#notes", "Asked about the plus plan; wants the price in writing.").await?;
        std::fs::write(out.join("agent-desktop.png"), b.client.screenshot().await?)?;
        Ok(())
    })
    .await;
}

/// The agent desktop in Spanish, strings written by its script included; without telephony it
/// says the dialer is off and offers no login. A supervisor (no agent privilege) has no link to
/// it and is refused.
#[tokio::test]
async fn agent_desktop_in_spanish_and_only_for_agents() {
    let server = Server::start("sqlite").await;
    let (s, u) = common::post_json(
        &server.client(),
        server.url("/api/v1/users"),
        json!({"username": "sup", "role_id": 2, "campaigns_profile": {"scope": "all"}, "password": "supervisor-password"}),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    run("agent_desktop_in_spanish_and_only_for_agents", &server, |b| async move {
        b.login("admin", ADMIN_PASSWORD).await?;
        b.click("#lang-es").await?;
        b.wait_for_text("Campañas sin grupo").await?;
        b.click("header nav a[href='/agent']").await?;
        b.find("#state-line[data-state=off]").await?;
        assert_eq!(b.text("h1").await?, "Escritorio del agente");
        assert_eq!(b.text("#state").await?, "El marcador no está en marcha (telefonía desactivada)");
        assert!(!b.find("#dialer-login").await?.is_displayed().await?, "no dialer login without telephony");
        b.click("#logout").await?;
        b.login("sup", "supervisor-password").await?;
        assert!(!b.source().await?.contains("href=\"/agent\""), "no link for a role without the agent privilege");
        assert_eq!(b.http_get("/agent").await?.0, 403);
        Ok(())
    })
    .await;
}

/// Preview mode on the agent desktop: the record comes first with its countdown; Skip, then
/// Call until a customer answers; Mark do-not-call (confirmed) files the campaign's do-not-call
/// disposition: the number is on the internal DNC list and the record is never called again.
#[tokio::test]
async fn agent_previews_and_marks_do_not_call() {
    let server = Server::start_args("sqlite", &["serve", "--telephony", "sim", "--sim-agents", "0"]).await;
    let api = server.client();
    let (_, team) = common::post_json(&api, server.url("/api/v1/agent-groups"), json!({"name": "Team"})).await;
    let (s, u) = common::post_json(
        &api,
        server.url("/api/v1/users"),
        json!({"username": "ben", "role_id": 3, "campaigns_profile": {"scope": "all"}, "agent_group_ids": [team["id"]], "password": "agent-password"}),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let (s, d) = common::post_json(
        &api,
        server.url("/api/v1/dispositions"),
        json!({"name": "Do not call", "colour": "#212121", "is_final": true, "is_do_not_call": true}),
    )
    .await;
    assert_eq!(s, 201, "{d}");
    let (_, lid) = common::campaign(
        &server,
        "Preview",
        30,
        json!({"dialing_mode": "preview", "agent_group_id": team["id"], "preview_timeout_s": 120, "ring_timeout_s": 8}),
    )
    .await;
    let phone = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let dialed = phone.clone();
    run("agent_previews_and_marks_do_not_call", &server, |b| async move {
        b.login("ben", "agent-password").await?;
        b.goto("/agent").await?;
        b.press("#dialer-login").await?;
        b.press("#ready").await?;
        // The offer: the record and a countdown from the profile's preview timeout.
        b.find("#state-line[data-state=preview]").await?;
        let countdown = b.visible("#offer-countdown", WAIT_S).await?.text().await?;
        let left_s: u64 = countdown.trim_end_matches(" s left").parse().map_err(|e| format!("{countdown:?}: {e}"))?;
        assert!((100..=120).contains(&left_s), "{countdown}");
        let skipped = b.text("#contact-phone").await?;
        b.press("#preview-skip").await?;
        // Call the next offers until a customer answers.
        let mut answered = false;
        for _ in 0..(CALL_WAIT_S * 10) {
            match b.desk_state().await?.as_str() {
                "on_call" => {
                    answered = true;
                    break;
                }
                "preview" if b.text("#contact-phone").await? != skipped => {
                    b.press_if_shown("#preview-call").await?;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answered, "no customer answered");
        *dialed.lock().unwrap() = b.text("#contact-phone").await?;
        b.press("#mark-dnc").await?;
        b.client.accept_alert().await?;
        b.find("#state-line[data-state=preview], #state-line[data-state=ready]").await?;
        Ok(())
    })
    .await;
    let phone = phone.lock().unwrap().clone();
    let (_, entries) = common::get_json(&api, server.url("/api/v1/dnc-lists/1/entries?limit=100")).await;
    assert!(entries["items"].as_array().unwrap().iter().any(|e| e["phone"] == phone), "{phone} not on the internal DNC list: {entries}");
    let (_, page) = common::get_json(&api, server.url(&format!("/api/v1/contact-lists/{lid}/records?limit=100"))).await;
    let rec = page["items"].as_array().unwrap().iter().find(|r| r["phone"] == phone).unwrap();
    assert_eq!(rec["record_type"], "no_call", "{rec}");
}
