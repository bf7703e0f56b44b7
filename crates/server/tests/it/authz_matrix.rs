//! The authorisation matrix, on SQLite and PostgreSQL: every route of the OpenAPI document x
//! every built-in role (administrator, supervisor, agent), each with every campaign or only
//! listed ones, plus no credentials, x a target inside the caller's campaigns profile, outside
//! it, and one that does not exist. For each it asserts the exact status, that a target outside
//! the profile answers exactly as one that does not exist, and that no response to a user with
//! listed campaigns carries anything of the other campaigns (names, ids, records of their
//! lists, their calls, counts, live figures, audit entries).
//!
//! The routes come from `/api/openapi.json`: a route without a case here fails the test, so a
//! new route cannot be forgotten. The console's pages and forms run through the same people and
//! targets ([`run_console_matrix`]).

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

/// Every name of an object outside the limited users' profile carries this marker.
const OUT: &str = "zzout";
const MISSING: i64 = 999_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    In,
    Out,
    Missing,
}

#[derive(Debug, Clone)]
struct Who {
    name: &'static str,
    /// `None`: no credentials.
    role: Option<&'static str>,
    limited: bool,
    token: String,
    user_id: i64,
}

impl Who {
    fn privileges(&self) -> &'static [&'static str] {
        match self.role {
            Some("administrator") => &["campaigns_view", "campaigns_edit", "lists_import", "dnc", "users_roles", "reports", "agent"],
            Some("supervisor") => &["campaigns_view", "campaigns_edit", "lists_import", "dnc", "reports"],
            Some("agent") => &["agent"],
            _ => &[],
        }
    }
    fn client(&self) -> reqwest::Client {
        if self.role.is_none() {
            reqwest::Client::new()
        } else {
            client_with(&self.token)
        }
    }
}

/// What a route needs and answers. The privileges are written here independently of the
/// server's table: this is the specification the server is checked against.
#[derive(Debug, Clone)]
struct Spec {
    /// Any one suffices; empty: any signed-in user; `["public"]`: no sign-in.
    privs: &'static [&'static str],
    /// In/out of the profile matters for this route.
    scoped: bool,
    /// Authorised, target in the profile.
    ok: u16,
    /// Same, for a user with listed campaigns (e.g. 403: only users with every campaign create one).
    limited_in: Option<u16>,
    /// Authorised, with every campaign, target outside the limited users' profile.
    out_all: Option<u16>,
    /// A target that does not exist (and, for limited users, one outside their profile).
    missing: u16,
    /// Server-sent events: read the first event only.
    sse: bool,
}

fn spec(privs: &'static [&'static str], scoped: bool, ok: u16) -> Spec {
    Spec { privs, scoped, ok, limited_in: None, out_all: None, missing: 404, sse: false }
}

const VIEW: &[&str] = &["campaigns_view"];
const EDIT: &[&str] = &["campaigns_edit"];
const LIST_READ: &[&str] = &["campaigns_view", "lists_import"];
const LIST_WRITE: &[&str] = &["lists_import"];
const CATALOGUE_READ: &[&str] = &["campaigns_view", "agent"];
const DNC: &[&str] = &["dnc"];
const USERS: &[&str] = &["users_roles"];
const AGENT: &[&str] = &["agent"];
const AUDIT: &[&str] = &["reports", "users_roles"];
const SIGNED_IN: &[&str] = &[];
const PUBLIC: &[&str] = &["public"];

fn expected(sp: &Spec, who: &Who, t: Target) -> u16 {
    if sp.privs == PUBLIC {
        return sp.ok;
    }
    if who.role.is_none() {
        return 401;
    }
    if !sp.privs.is_empty() && !sp.privs.iter().any(|p| who.privileges().contains(p)) {
        return 403;
    }
    match t {
        Target::In if who.limited => sp.limited_in.unwrap_or(sp.ok),
        Target::In => sp.ok,
        Target::Out if who.limited => sp.missing,
        Target::Out => sp.out_all.unwrap_or(sp.ok),
        Target::Missing => sp.missing,
    }
}

enum Body {
    None,
    Json(Value),
    Csv(&'static str),
}

struct Req {
    path: String,
    body: Body,
    /// Requests the same caller makes first (results ignored).
    prep: Vec<(&'static str, String, Value)>,
    /// Send it with a fresh token of the caller (the request revokes the one it uses).
    fresh_token: bool,
}

fn req(path: String, body: Body) -> Req {
    Req { path, body, prep: vec![], fresh_token: false }
}

/// The data the matrix runs against.
struct Fixture {
    srv: Server,
    admin: reqwest::Client,
    n: AtomicU64,
    /// Campaign A (in every limited user's profile) and B (in none).
    a: i64,
    b: i64,
    /// Lists: of A, of B, shared by A and B.
    la: i64,
    lb: i64,
    ls: i64,
    /// A record of each of those lists.
    ra: i64,
    rb: i64,
    rs: i64,
    /// Imports into LA and LB.
    ia: i64,
    ib: i64,
    disp_a: i64,
    disp_b: i64,
    tag_a: i64,
    tag_b: i64,
    /// A profile used by A and B.
    profile: i64,
    dnc: i64,
    /// Users limited to A, limited to B, with every campaign (targets of the users routes).
    user_in: i64,
    user_out: i64,
    /// The campaigns in the limited users' profile (A and fresh ones).
    inside: std::sync::Mutex<Vec<i64>>,
    /// Everything created outside it, for the structural leak check.
    out_campaigns: std::sync::Mutex<BTreeSet<i64>>,
    out_lists: std::sync::Mutex<BTreeSet<i64>>,
    limited_users: std::sync::Mutex<Vec<(i64, &'static str, i64)>>,
    roles: HashMap<String, i64>,
}

impl Fixture {
    fn next(&self) -> u64 {
        self.n.fetch_add(1, Ordering::Relaxed)
    }
    fn url(&self, p: &str) -> String {
        self.srv.url(p)
    }
    async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = post_json(&self.admin, self.url(path), body.clone()).await;
        assert!(s.is_success(), "fixture POST {path} {body}: {s} {v}");
        v
    }
    fn webhook_json(&self, n: u64) -> Value {
        json!({"name": format!("hook {n}"), "url": "https://crm.example.com/campana", "event_types": ["call.ended"]})
    }
    fn dnc_registry_json(&self) -> Value {
        json!({"kind": "csv", "covers": ["1212"], "max_age_days": 31})
    }
    /// The matrix DNC list with a registry (made once, idempotent).
    async fn dnc_registry(&self) -> i64 {
        self.put(&format!("/api/v1/dnc-lists/{}/registry", self.dnc), self.dnc_registry_json()).await;
        self.dnc
    }
    async fn put(&self, path: &str, body: Value) -> Value {
        let r = self.admin.put(self.url(path)).json(&body).send().await.unwrap();
        let s = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(s.is_success(), "fixture PUT {path} {body}: {s} {v}");
        v
    }
    fn name(&self, t: Target, what: &str) -> String {
        let n = self.next();
        match t {
            Target::Out => format!("{OUT} {what} {n}"),
            _ => format!("{what} {n}"),
        }
    }
    /// A new campaign inside (added to every limited user's profile) or outside.
    async fn campaign(&self, t: Target, lists: &[i64]) -> i64 {
        let name = self.name(t, "campaign");
        let c = self
            .post(
                "/api/v1/campaigns",
                json!({"name": name, "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon"],
                       "time_zone": "America/New_York", "contact_list_ids": lists}),
            )
            .await;
        let id = c["id"].as_i64().unwrap();
        // (SQLite may reuse a deleted campaign's id.)
        if t == Target::In {
            self.out_campaigns.lock().unwrap().remove(&id);
            self.inside.lock().unwrap().push(id);
            self.sync_profiles().await;
        } else {
            self.inside.lock().unwrap().retain(|c| *c != id);
            self.out_campaigns.lock().unwrap().insert(id);
            self.out_lists.lock().unwrap().extend(lists.iter().filter(|l| **l != self.ls));
        }
        id
    }
    async fn sync_profiles(&self) {
        let (_, all) = get_json(&self.admin, self.url("/api/v1/campaigns?limit=1000")).await;
        let exists: Vec<i64> = all["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
        self.inside.lock().unwrap().retain(|c| exists.contains(c));
        let inside = self.inside.lock().unwrap().clone();
        let users = self.limited_users.lock().unwrap().clone();
        for (id, name, role) in users {
            self.put(
                &format!("/api/v1/users/{id}"),
                json!({"username": name, "role_id": role, "campaigns_profile": {"scope": "only", "campaign_ids": inside}}),
            )
            .await;
        }
    }
    async fn list(&self, t: Target) -> i64 {
        self.post("/api/v1/contact-lists", json!({"name": self.name(t, "list")})).await["id"].as_i64().unwrap()
    }
    /// A list attached to a fresh campaign inside or outside.
    async fn attached_list(&self, t: Target) -> i64 {
        let l = self.list(t).await;
        self.campaign(t, &[l]).await;
        l
    }
    async fn record(&self, list: i64, t: Target) -> i64 {
        let n = self.next();
        let ext = match t {
            Target::Out => format!("{OUT}-{n}"),
            _ => format!("ext-{n}"),
        };
        let v = self
            .put(
                &format!("/api/v1/contact-lists/{list}/records/by-external-id/{ext}"),
                json!({"name": self.name(t, "customer"), "phones": [{"number": format!("+1212555{:04}", n % 10000), "type": "home"}]}),
            )
            .await;
        v["records"][0]["id"].as_i64().unwrap()
    }
    async fn import(&self, list: i64, t: Target) -> i64 {
        let file = if t == Target::Out { "zzout.csv" } else { "in.csv" };
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"phone,name\n+13125550100,Someone\nnot a number,Bad\n".to_vec()).file_name(file),
        );
        let r = self.admin.post(self.url(&format!("/api/v1/contact-lists/{list}/imports"))).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), 202);
        let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        for _ in 0..200 {
            let (_, st) = get_json(&self.admin, self.url(&format!("/api/v1/imports/{id}"))).await;
            if st["state"] != "running" && st["state"] != "pending" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        id
    }
    async fn user(&self, t: Target, scope: Value) -> i64 {
        let name = format!("{}-user-{}", if t == Target::Out { OUT } else { "in" }, self.next());
        self.post(
            "/api/v1/users",
            json!({"username": name, "role_id": self.roles["agent"], "campaigns_profile": scope, "password": "a long password"}),
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }
    fn pick(&self, t: Target, inside: i64, outside: i64) -> i64 {
        match t {
            Target::In => inside,
            Target::Out => outside,
            Target::Missing => MISSING,
        }
    }
    fn campaign_json(&self, name: &str, lists: &[i64]) -> Value {
        json!({"name": name, "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon"],
               "time_zone": "America/New_York", "contact_list_ids": lists})
    }
}

async fn setup(backend: &str) -> (Fixture, Vec<Who>) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        "sqlite" => format!("sqlite://{}/campana.db", dir.path().display()),
        _ => campana_store::testing::postgres_store().await.expect("PostgreSQL for tests").1,
    };
    let srv = Server::start_with(dir, url, &["serve", "--telephony", "sim", "--sim-agents", "0"]).ready().await;
    let admin = srv.client();
    let (_, roles) = get_json(&admin, srv.url("/api/v1/roles")).await;
    let roles: HashMap<String, i64> =
        roles["items"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), r["id"].as_i64().unwrap())).collect();
    let mut fx = Fixture {
        srv,
        admin,
        n: AtomicU64::new(1),
        a: 0,
        b: 0,
        la: 0,
        lb: 0,
        ls: 0,
        ra: 0,
        rb: 0,
        rs: 0,
        ia: 0,
        ib: 0,
        disp_a: 0,
        disp_b: 0,
        tag_a: 0,
        tag_b: 0,
        profile: 0,
        dnc: 0,
        user_in: 0,
        user_out: 0,
        inside: Default::default(),
        out_campaigns: Default::default(),
        out_lists: Default::default(),
        limited_users: Default::default(),
        roles,
    };
    fx.profile = fx.post("/api/v1/settings-profiles", json!({"name": "Shared profile", "settings": {"dialing_mode": "preview"}})).await
        ["id"]
        .as_i64()
        .unwrap();
    fx.la = fx.list(Target::In).await;
    fx.lb = fx.list(Target::Out).await;
    fx.ls = fx.list(Target::In).await;
    let mut a = fx.campaign_json("Campaign A", &[fx.la, fx.ls]);
    a["profile_id"] = json!(fx.profile);
    fx.a = fx.post("/api/v1/campaigns", a).await["id"].as_i64().unwrap();
    let mut b = fx.campaign_json(&format!("{OUT} campaign B"), &[fx.lb, fx.ls]);
    b["profile_id"] = json!(fx.profile);
    fx.b = fx.post("/api/v1/campaigns", b).await["id"].as_i64().unwrap();
    fx.inside.lock().unwrap().push(fx.a);
    fx.out_campaigns.lock().unwrap().insert(fx.b);
    fx.out_lists.lock().unwrap().insert(fx.lb);
    fx.ra = fx.record(fx.la, Target::In).await;
    fx.rb = fx.record(fx.lb, Target::Out).await;
    fx.rs = fx.record(fx.ls, Target::In).await;
    fx.ia = fx.import(fx.la, Target::In).await;
    fx.ib = fx.import(fx.lb, Target::Out).await;
    let disp = |name: String, c: i64| json!({"name": name, "colour": "#00aa00", "campaign_id": c});
    fx.disp_a = fx.post("/api/v1/dispositions", disp("Sale A".into(), fx.a)).await["id"].as_i64().unwrap();
    fx.disp_b = fx.post("/api/v1/dispositions", disp(format!("{OUT} sale B"), fx.b)).await["id"].as_i64().unwrap();
    let tag = |name: String, c: i64| json!({"name": name, "colour": "#aa0000", "campaign_id": c});
    fx.tag_a = fx.post("/api/v1/manager-tags", tag("Tag A".into(), fx.a)).await["id"].as_i64().unwrap();
    fx.tag_b = fx.post("/api/v1/manager-tags", tag(format!("{OUT} tag B"), fx.b)).await["id"].as_i64().unwrap();
    fx.dnc = fx.post("/api/v1/dnc-lists", json!({"name": "Matrix DNC"})).await["id"].as_i64().unwrap();
    fx.user_in = fx.user(Target::In, json!({"scope": "only", "campaign_ids": [fx.a]})).await;
    fx.user_out = fx.user(Target::Out, json!({"scope": "only", "campaign_ids": [fx.b]})).await;
    // Calls of both campaigns on the shared list's record (as the dialer writes them).
    let store = campana_store::Store::connect(&fx.srv.database_url).await.unwrap();
    for (call, campaign, notes) in [(900_001i64, fx.a, "call of A"), (900_002, fx.b, "zzout call of B")] {
        sqlx::query(
            "INSERT INTO call_attempts (call_id, campaign_id, record_id, phone, started_at, ended_at, result, notes) \
             VALUES ($1, $2, $3, '+12125550199', $4, $4, 'no_answer', $5)",
        )
        .bind(call)
        .bind(campaign)
        .bind(fx.rs)
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(notes)
        .execute(store.pool())
        .await
        .unwrap();
    }
    store.close().await;

    let mut people = vec![Who { name: "anonymous", role: None, limited: false, token: String::new(), user_id: 0 }];
    let admin_id = get_json(&fx.admin, fx.url("/api/v1/auth/me")).await.1["user"]["id"].as_i64().unwrap();
    people.push(Who {
        name: "administrator (all)",
        role: Some("administrator"),
        limited: false,
        token: fx.srv.token.clone(),
        user_id: admin_id,
    });
    for (name, role, limited) in [
        ("administrator (listed)", "administrator", true),
        ("supervisor (all)", "supervisor", false),
        ("supervisor (listed)", "supervisor", true),
        ("agent (all)", "agent", false),
        ("agent (listed)", "agent", true),
    ] {
        let username: &'static str = Box::leak(name.replace([' ', '(', ')'], "").to_lowercase().into_boxed_str());
        let scope = if limited { json!({"scope": "only", "campaign_ids": [fx.a]}) } else { json!({"scope": "all"}) };
        let id = fx
            .post(
                "/api/v1/users",
                json!({"username": username, "role_id": fx.roles[role], "campaigns_profile": scope, "password": "a long password"}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        if limited {
            fx.limited_users.lock().unwrap().push((id, username, fx.roles[role]));
        }
        let token = fx.srv.token_for(username, "a long password").await;
        people.push(Who { name, role: Some(role), limited, token, user_id: id });
    }
    (fx, people)
}

/// The case of one route: its specification and the request for a target.
async fn case(fx: &Fixture, who: &Who, method: &str, path: &str, t: Target) -> Option<(Spec, Req)> {
    let n = fx.next();
    let j = |v: Value| Body::Json(v);
    Some(match (method, path) {
        // ---- campaigns ----
        ("get", "/api/v1/campaigns") => (spec(VIEW, false, 200), req("/api/v1/campaigns?limit=1000".into(), Body::None)),
        ("post", "/api/v1/campaigns") => {
            // Out: a campaign naming a list of another campaign.
            let lists = match t {
                Target::In => vec![],
                Target::Out => vec![fx.lb],
                Target::Missing => vec![MISSING],
            };
            let mut sp = spec(EDIT, true, 201);
            sp.limited_in = Some(403);
            sp.missing = 422;
            let body = fx.campaign_json(&format!("new campaign {n}"), &lists);
            // A limited user may not create at all: 403 whatever the body.
            if who.limited {
                sp.missing = 403;
            }
            (sp, req("/api/v1/campaigns".into(), j(body)))
        }
        ("get", "/api/v1/campaigns/by-group") => (spec(VIEW, false, 200), req(path.into(), Body::None)),
        ("get", "/api/v1/campaigns/{id}") => {
            (spec(VIEW, true, 200), req(format!("/api/v1/campaigns/{}", fx.pick(t, fx.a, fx.b)), Body::None))
        }
        ("put", "/api/v1/campaigns/{id}") => {
            let id = fx.pick(t, fx.a, fx.b);
            let (name, lists) =
                if id == fx.a { ("Campaign A".to_string(), vec![fx.la, fx.ls]) } else { (format!("{OUT} campaign B"), vec![fx.lb, fx.ls]) };
            let mut body = fx.campaign_json(&name, &lists);
            body["profile_id"] = json!(fx.profile);
            (spec(EDIT, true, 200), req(format!("/api/v1/campaigns/{id}"), j(body)))
        }
        ("delete", "/api/v1/campaigns/{id}") => {
            let id = match t {
                Target::Missing => MISSING,
                _ => fx.campaign(t, &[]).await,
            };
            (spec(EDIT, true, 204), req(format!("/api/v1/campaigns/{id}"), Body::None))
        }
        ("get", "/api/v1/campaigns/{id}/settings") => {
            (spec(VIEW, true, 200), req(format!("/api/v1/campaigns/{}/settings", fx.pick(t, fx.a, fx.b)), Body::None))
        }
        ("post", "/api/v1/campaigns/{id}/{action}") => {
            let id = match t {
                Target::Missing => MISSING,
                _ => fx.campaign(t, &[]).await,
            };
            (spec(EDIT, true, 200), req(format!("/api/v1/campaigns/{id}/archive"), Body::None))
        }
        ("get", "/api/v1/call-results") => (spec(SIGNED_IN, false, 200), req(path.into(), Body::None)),
        ("get", "/api/v1/campaigns/{id}/compliance-preview") => {
            (spec(VIEW, true, 200), req(format!("/api/v1/campaigns/{}/compliance-preview", fx.pick(t, fx.a, fx.b)), Body::None))
        }
        ("get", "/api/v1/campaigns/{id}/records/{record_id}/eligibility") => {
            let (c, r) = match t {
                Target::In => (fx.a, fx.ra),
                Target::Out => (fx.b, fx.rb),
                Target::Missing => (MISSING, fx.ra),
            };
            (spec(VIEW, true, 200), req(format!("/api/v1/campaigns/{c}/records/{r}/eligibility"), Body::None))
        }
        ("post", "/api/v1/campaigns/{id}/forecast") => (
            spec(VIEW, true, 200),
            req(format!("/api/v1/campaigns/{}/forecast", fx.pick(t, fx.a, fx.b)), j(json!({"agents": 2, "answer_rate": 0.3}))),
        ),
        ("get", "/api/v1/campaigns/{id}/progress") => {
            (spec(VIEW, true, 200), req(format!("/api/v1/campaigns/{}/progress", fx.pick(t, fx.a, fx.b)), Body::None))
        }
        ("get", "/api/v1/campaigns/{id}/progress/events") => {
            let mut sp = spec(VIEW, true, 200);
            sp.sse = true;
            (sp, req(format!("/api/v1/campaigns/{}/progress/events", fx.pick(t, fx.a, fx.b)), Body::None))
        }
        ("get", "/api/v1/campaigns/{id}/agents") => {
            (spec(VIEW, true, 200), req(format!("/api/v1/campaigns/{}/agents", fx.pick(t, fx.a, fx.b)), Body::None))
        }
        ("get", "/api/v1/dialer/status") | ("get", "/api/v1/calling-hours") => (spec(VIEW, false, 200), req(path.into(), Body::None)),

        // ---- catalogue objects ----
        ("get", "/api/v1/campaign-groups") | ("get", "/api/v1/agent-groups") | ("get", "/api/v1/settings-profiles") => {
            (spec(VIEW, false, 200), req(path.into(), Body::None))
        }
        ("get", "/api/v1/scripts") => (spec(CATALOGUE_READ, false, 200), req(path.into(), Body::None)),
        ("get", "/api/v1/dispositions") | ("get", "/api/v1/manager-tags") => {
            (spec(CATALOGUE_READ, false, 200), req(format!("{path}?limit=1000"), Body::None))
        }
        ("get", "/api/v1/dnc-lists") => (spec(DNC, false, 200), req(path.into(), Body::None)),
        ("get", "/api/v1/roles") => (spec(USERS, false, 200), req(path.into(), Body::None)),
        ("get", "/api/v1/contact-lists") => (spec(LIST_READ, false, 200), req(format!("{path}?limit=1000"), Body::None)),
        ("post", "/api/v1/campaign-groups") | ("post", "/api/v1/agent-groups") | ("post", "/api/v1/dnc-lists") => {
            let privs = if path.contains("dnc") { DNC } else { EDIT };
            (spec(privs, false, 201), req(path.into(), j(json!({"name": format!("made {n}")}))))
        }
        ("post", "/api/v1/scripts") => {
            (spec(EDIT, false, 201), req(path.into(), j(json!({"name": format!("script {n}"), "body": "Hello {{name}}"}))))
        }
        ("post", "/api/v1/settings-profiles") => {
            (spec(EDIT, false, 201), req(path.into(), j(json!({"name": format!("profile {n}"), "settings": {}}))))
        }
        ("post", "/api/v1/roles") => {
            (spec(USERS, false, 201), req(path.into(), j(json!({"name": format!("role {n}"), "privileges": ["reports"]}))))
        }
        ("post", "/api/v1/contact-lists") => (spec(LIST_WRITE, false, 201), req(path.into(), j(json!({"name": format!("new list {n}")})))),
        ("post", "/api/v1/dispositions") | ("post", "/api/v1/manager-tags") => {
            // Out: bound to a campaign outside the profile.
            let mut sp = spec(EDIT, true, 201);
            sp.missing = 422;
            let c = fx.pick(t, fx.a, fx.b);
            (sp, req(path.into(), j(json!({"name": format!("made {n}"), "colour": "#123456", "campaign_id": c}))))
        }
        ("get", "/api/v1/campaign-groups/{id}")
        | ("get", "/api/v1/agent-groups/{id}")
        | ("get", "/api/v1/scripts/{id}")
        | ("get", "/api/v1/settings-profiles/{id}")
        | ("get", "/api/v1/dnc-lists/{id}")
        | ("get", "/api/v1/roles/{id}")
        | ("put", "/api/v1/campaign-groups/{id}")
        | ("put", "/api/v1/agent-groups/{id}")
        | ("put", "/api/v1/scripts/{id}")
        | ("put", "/api/v1/settings-profiles/{id}")
        | ("put", "/api/v1/dnc-lists/{id}")
        | ("put", "/api/v1/roles/{id}")
        | ("delete", "/api/v1/campaign-groups/{id}")
        | ("delete", "/api/v1/agent-groups/{id}")
        | ("delete", "/api/v1/scripts/{id}")
        | ("delete", "/api/v1/settings-profiles/{id}")
        | ("delete", "/api/v1/dnc-lists/{id}")
        | ("delete", "/api/v1/roles/{id}") => {
            // Not about any campaign: in and out are the same object; a fresh one each time.
            let coll = path.trim_end_matches("/{id}");
            let body = match coll {
                "/api/v1/scripts" => json!({"name": format!("script {n}"), "body": "Hi"}),
                "/api/v1/settings-profiles" => json!({"name": format!("profile {n}"), "settings": {}}),
                "/api/v1/roles" => json!({"name": format!("role {n}"), "privileges": ["reports"]}),
                _ => json!({"name": format!("object {n}")}),
            };
            let id = if t == Target::Missing { MISSING } else { fx.post(coll, body.clone()).await["id"].as_i64().unwrap() };
            let (read, write) = match coll {
                "/api/v1/scripts" => (CATALOGUE_READ, EDIT),
                "/api/v1/dnc-lists" => (DNC, DNC),
                "/api/v1/roles" => (USERS, USERS),
                _ => (VIEW, EDIT),
            };
            let (privs, ok, body) = match method {
                "get" => (read, 200, Body::None),
                "put" => (write, 200, j(body)),
                _ => (write, 204, Body::None),
            };
            (spec(privs, false, ok), req(format!("{coll}/{id}"), body))
        }
        ("get", "/api/v1/dispositions/{id}")
        | ("put", "/api/v1/dispositions/{id}")
        | ("delete", "/api/v1/dispositions/{id}")
        | ("get", "/api/v1/manager-tags/{id}")
        | ("put", "/api/v1/manager-tags/{id}")
        | ("delete", "/api/v1/manager-tags/{id}") => {
            let coll = path.trim_end_matches("/{id}");
            let c = fx.pick(t, fx.a, fx.b);
            let body = json!({"name": fx.name(t, "bound"), "colour": "#654321", "campaign_id": c});
            let id = if t == Target::Missing { MISSING } else { fx.post(coll, body.clone()).await["id"].as_i64().unwrap() };
            let (privs, ok, body) = match method {
                "get" => (CATALOGUE_READ, 200, Body::None),
                "put" => (EDIT, 200, j(body)),
                _ => (EDIT, 204, Body::None),
            };
            (spec(privs, true, ok), req(format!("{coll}/{id}"), body))
        }
        ("get", "/api/v1/contact-lists/{id}") | ("put", "/api/v1/contact-lists/{id}") => {
            let id = fx.pick(t, fx.la, fx.lb);
            let name = if id == fx.lb { format!("{OUT} list B") } else { "list A".to_string() };
            if method == "get" {
                (spec(LIST_READ, true, 200), req(format!("/api/v1/contact-lists/{id}"), Body::None))
            } else {
                (spec(LIST_WRITE, true, 200), req(format!("/api/v1/contact-lists/{id}"), j(json!({"name": format!("{name} {n}")}))))
            }
        }
        ("delete", "/api/v1/contact-lists/{id}") => {
            // In: a list no campaign uses (visible to all, deletable); out: another campaign's list.
            let id = match t {
                Target::In => fx.list(Target::In).await,
                Target::Out => fx.attached_list(Target::Out).await,
                Target::Missing => MISSING,
            };
            let mut sp = spec(LIST_WRITE, true, 204);
            sp.out_all = Some(409);
            (sp, req(format!("/api/v1/contact-lists/{id}"), Body::None))
        }

        // ---- records ----
        ("get", "/api/v1/contact-lists/{id}/records") => {
            (spec(LIST_READ, true, 200), req(format!("/api/v1/contact-lists/{}/records?limit=1000", fx.pick(t, fx.la, fx.lb)), Body::None))
        }
        ("get", "/api/v1/contact-lists/{id}/records/{record_id}") | ("patch", "/api/v1/contact-lists/{id}/records/{record_id}") => {
            let (l, r) = match t {
                Target::In => (fx.la, fx.ra),
                Target::Out => (fx.lb, fx.rb),
                Target::Missing => (MISSING, fx.ra),
            };
            let url = format!("/api/v1/contact-lists/{l}/records/{r}");
            if method == "get" {
                (spec(LIST_READ, true, 200), req(url, Body::None))
            } else {
                (spec(LIST_WRITE, true, 200), req(url, j(json!({"dial_until": null}))))
            }
        }
        ("get", "/api/v1/contact-lists/{id}/records/{record_id}/attempts") => {
            // In: the shared list's record, called by A and by B.
            let (l, r) = match t {
                Target::In => (fx.ls, fx.rs),
                Target::Out => (fx.lb, fx.rb),
                Target::Missing => (MISSING, fx.rs),
            };
            (spec(LIST_READ, true, 200), req(format!("/api/v1/contact-lists/{l}/records/{r}/attempts"), Body::None))
        }
        ("get", "/api/v1/contact-lists/{id}/records/{record_id}/attempts/{call_id}/recording") => {
            // The shared record's call by A (in) or by B (out); neither has a recording here.
            let call = match t {
                Target::In => 900_001,
                Target::Out => 900_002,
                Target::Missing => MISSING,
            };
            (spec(VIEW, true, 404), req(format!("/api/v1/contact-lists/{}/records/{}/attempts/{call}/recording", fx.ls, fx.rs), Body::None))
        }
        ("put", "/api/v1/contact-lists/{id}/records/by-external-id/{external_id}") => {
            let l = fx.pick(t, fx.la, fx.lb);
            (
                spec(LIST_WRITE, true, 200),
                req(
                    format!("/api/v1/contact-lists/{l}/records/by-external-id/pushed-{n}"),
                    j(json!({"name": "Pushed", "phones": [{"number": "+13125550111"}]})),
                ),
            )
        }
        ("get", "/api/v1/contact-lists/{id}/records/by-external-id/{external_id}") => {
            let l = fx.pick(t, fx.la, fx.lb);
            let ext = if l == fx.lb { fx_ext(fx, fx.lb).await } else { fx_ext(fx, fx.la).await };
            (spec(LIST_READ, true, 200), req(format!("/api/v1/contact-lists/{l}/records/by-external-id/{ext}"), Body::None))
        }
        ("post", "/api/v1/contact-lists/{id}/records/bulk-upsert") => {
            let l = fx.pick(t, fx.la, fx.lb);
            let body = json!({"members": [{"external_id": format!("bulk-{n}"), "contact": {"name": "Bulk", "phones": [{"number": "+13125550112"}]}}]});
            (spec(LIST_WRITE, true, 200), req(format!("/api/v1/contact-lists/{l}/records/bulk-upsert"), j(body)))
        }
        ("get", "/api/v1/dnc-lists/{id}/entries") => {
            let id = if t == Target::Missing { MISSING } else { fx.dnc };
            (spec(DNC, false, 200), req(format!("/api/v1/dnc-lists/{id}/entries"), Body::None))
        }
        ("post", "/api/v1/dnc-lists/{id}/entries") => {
            let id = if t == Target::Missing { MISSING } else { fx.dnc };
            (
                spec(DNC, false, 200),
                req(format!("/api/v1/dnc-lists/{id}/entries"), j(json!({"phone": format!("+1312555{:04}", n % 10000)}))),
            )
        }
        ("post", "/api/v1/dnc-lists/{id}/entries/bulk") => {
            let id = if t == Target::Missing { MISSING } else { fx.dnc };
            (
                spec(DNC, false, 200),
                req(
                    format!("/api/v1/dnc-lists/{id}/entries/bulk"),
                    j(json!({"entries": [{"phone": format!("+1415555{:04}", n % 10000)}]})),
                ),
            )
        }
        ("post", "/api/v1/dnc-lists/{id}/entries/import") => {
            let id = if t == Target::Missing { MISSING } else { fx.dnc };
            (spec(DNC, false, 200), req(format!("/api/v1/dnc-lists/{id}/entries/import"), Body::Csv("phone\n+17185550100\n")))
        }
        ("delete", "/api/v1/dnc-lists/{id}/entries/{phone}") => {
            let phone = format!("+1646555{:04}", n % 10000);
            let id = if t == Target::Missing {
                MISSING
            } else {
                fx.post(&format!("/api/v1/dnc-lists/{}/entries", fx.dnc), json!({"phone": phone})).await;
                fx.dnc
            };
            (spec(DNC, false, 204), req(format!("/api/v1/dnc-lists/{id}/entries/{}", phone.replace('+', "%2B")), Body::None))
        }

        // ---- webhooks: administrators with every campaign (they announce every campaign's events) ----
        ("get", "/api/v1/webhooks") | ("post", "/api/v1/webhooks") => {
            let mut sp = spec(USERS, false, if method == "get" { 200 } else { 201 });
            sp.limited_in = Some(403);
            (sp, req(path.into(), if method == "get" { Body::None } else { j(fx.webhook_json(n)) }))
        }
        ("get", "/api/v1/webhooks/{id}")
        | ("put", "/api/v1/webhooks/{id}")
        | ("delete", "/api/v1/webhooks/{id}")
        | ("post", "/api/v1/webhooks/{id}/rotate-secret")
        | ("get", "/api/v1/webhooks/{id}/deliveries")
        | ("post", "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver") => {
            let id = if t == Target::Missing {
                MISSING
            } else {
                fx.post("/api/v1/webhooks", fx.webhook_json(n)).await["endpoint"]["id"].as_i64().unwrap()
            };
            let ok = match method {
                "delete" => 204,
                // A fresh subscription has no delivery: authorised, the delivery does not exist.
                _ if path.ends_with("/redeliver") => 404,
                _ => 200,
            };
            let mut sp = spec(USERS, false, ok);
            sp.limited_in = Some(403);
            let concrete = path.replace("{id}", &id.to_string()).replace("{delivery_id}", &MISSING.to_string());
            let body = match method {
                "put" => j(fx.webhook_json(n)),
                "post" => j(json!({})),
                _ => Body::None,
            };
            (sp, req(concrete, body))
        }

        ("get", "/api/v1/dnc-lists/{id}/registry") => {
            let id = if t == Target::Missing { MISSING } else { fx.dnc_registry().await };
            (spec(DNC, false, 200), req(format!("/api/v1/dnc-lists/{id}/registry"), Body::None))
        }
        ("put", "/api/v1/dnc-lists/{id}/registry") => {
            let id = if t == Target::Missing { MISSING } else { fx.dnc };
            (spec(DNC, false, 200), req(format!("/api/v1/dnc-lists/{id}/registry"), j(fx.dnc_registry_json())))
        }
        ("post", "/api/v1/dnc-lists/{id}/registry/imports") => {
            let id = if t == Target::Missing { MISSING } else { fx.dnc_registry().await };
            let mut sp = spec(DNC, false, 202);
            sp.missing = 404;
            (sp, req(format!("/api/v1/dnc-lists/{id}/registry/imports?format=csv"), Body::Csv("phone\n+12125550177\n")))
        }
        ("get", "/api/v1/dnc-lists/{id}/registry/imports/{run}") => {
            let (id, run) = if t == Target::Missing {
                (MISSING, MISSING)
            } else {
                let id = fx.dnc_registry().await;
                let r = fx
                    .admin
                    .post(fx.url(&format!("/api/v1/dnc-lists/{id}/registry/imports?format=csv")))
                    .multipart(
                        reqwest::multipart::Form::new()
                            .part("file", reqwest::multipart::Part::bytes(b"phone\n+12125550178\n".to_vec()).file_name("r.csv")),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202, "fixture registry import");
                let v: Value = r.json().await.unwrap();
                (id, v["id"].as_i64().expect("the run's id"))
            };
            (spec(DNC, false, 200), req(format!("/api/v1/dnc-lists/{id}/registry/imports/{run}"), Body::None))
        }

        // ---- imports ----
        ("post", "/api/v1/contact-lists/{id}/imports") => {
            // One import at a time per list: let the previous caller's finish.
            for l in [fx.la, fx.lb] {
                for _ in 0..200 {
                    let (_, h) = get_json(&fx.admin, fx.url(&format!("/api/v1/contact-lists/{l}/imports"))).await;
                    if !h.as_array().unwrap().iter().any(|i| i["state"] == "running" || i["state"] == "pending") {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
            let mut sp = spec(LIST_WRITE, true, 202);
            sp.missing = 404;
            (
                sp,
                req(
                    format!("/api/v1/contact-lists/{}/imports", fx.pick(t, fx.la, fx.lb)),
                    Body::Csv("phone,name\n+13125550123,Imported\n"),
                ),
            )
        }
        ("get", "/api/v1/contact-lists/{id}/imports") => {
            (spec(LIST_READ, true, 200), req(format!("/api/v1/contact-lists/{}/imports", fx.pick(t, fx.la, fx.lb)), Body::None))
        }
        ("get", "/api/v1/imports/{id}") => {
            (spec(LIST_READ, true, 200), req(format!("/api/v1/imports/{}", fx.pick(t, fx.ia, fx.ib)), Body::None))
        }
        ("post", "/api/v1/imports/{id}/cancel") => {
            let mut sp = spec(LIST_WRITE, true, 409);
            sp.out_all = Some(409);
            (sp, req(format!("/api/v1/imports/{}/cancel", fx.pick(t, fx.ia, fx.ib)), Body::None))
        }
        ("get", "/api/v1/imports/{id}/errors.csv") => {
            (spec(LIST_READ, true, 200), req(format!("/api/v1/imports/{}/errors.csv", fx.pick(t, fx.ia, fx.ib)), Body::None))
        }

        // ---- users ----
        ("get", "/api/v1/users") => (spec(USERS, false, 200), req("/api/v1/users?limit=1000".into(), Body::None)),
        ("post", "/api/v1/users") => {
            let scope = match t {
                Target::In => json!({"scope": "only", "campaign_ids": [fx.a]}),
                Target::Out => json!({"scope": "only", "campaign_ids": [fx.b]}),
                Target::Missing => json!({"scope": "only", "campaign_ids": [MISSING]}),
            };
            let mut sp = spec(USERS, true, 201);
            sp.missing = 422;
            (sp, req(path.into(), j(json!({"username": format!("made-{n}"), "role_id": fx.roles["agent"], "campaigns_profile": scope}))))
        }
        ("get", "/api/v1/users/{id}") | ("put", "/api/v1/users/{id}") | ("delete", "/api/v1/users/{id}") => {
            let id = match (method, t) {
                (_, Target::Missing) => MISSING,
                ("delete", Target::In) => fx.user(Target::In, json!({"scope": "only", "campaign_ids": [fx.a]})).await,
                ("delete", Target::Out) => fx.user(Target::Out, json!({"scope": "only", "campaign_ids": [fx.b]})).await,
                _ => fx.pick(t, fx.user_in, fx.user_out),
            };
            let body = match t {
                Target::Out => {
                    json!({"username": format!("{OUT}-renamed-{n}"), "role_id": fx.roles["agent"], "campaigns_profile": {"scope": "only", "campaign_ids": [fx.b]}})
                }
                _ => {
                    json!({"username": format!("in-renamed-{n}"), "role_id": fx.roles["agent"], "campaigns_profile": {"scope": "only", "campaign_ids": [fx.a]}})
                }
            };
            let (ok, body) = match method {
                "get" => (200, Body::None),
                "put" => (200, j(body)),
                _ => (204, Body::None),
            };
            (spec(USERS, true, ok), req(format!("/api/v1/users/{id}"), body))
        }

        // ---- sign-in and tokens ----
        ("post", "/api/v1/auth/login") => {
            (spec(PUBLIC, false, 200), req(path.into(), j(json!({"username": "agentall", "password": "a long password"}))))
        }
        ("post", "/api/v1/auth/logout") => {
            let mut r = req(path.into(), Body::None);
            r.fresh_token = true;
            (spec(SIGNED_IN, false, 204), r)
        }
        ("get", "/api/v1/auth/me") | ("get", "/api/v1/auth/tokens") => (spec(SIGNED_IN, false, 200), req(path.into(), Body::None)),
        ("post", "/api/v1/auth/tokens") => (spec(SIGNED_IN, false, 201), req(path.into(), j(json!({"name": format!("t{n}")})))),
        // A wrong current password: checked for every signed-in user, and nothing changes.
        ("post", "/api/v1/auth/password") => {
            (spec(SIGNED_IN, false, 422), req(path.into(), j(json!({"current_password": "not it", "new_password": "a new long password"}))))
        }
        ("delete", "/api/v1/auth/tokens/{id}") => {
            // In: the caller's own token; out: another user's.
            let id = match t {
                Target::Missing => MISSING,
                Target::In if who.role.is_some() => {
                    post_json(&who.client(), fx.url("/api/v1/auth/tokens"), json!({"name": "to revoke"})).await.1["id"].as_i64().unwrap()
                }
                _ => post_json(&fx.admin, fx.url("/api/v1/auth/tokens"), json!({"name": "admin's"})).await.1["id"].as_i64().unwrap(),
            };
            let mut sp = spec(SIGNED_IN, true, 204);
            if who.user_id != 0 && t == Target::Out {
                // The administrator's own token is "in" for them; for everyone else it does not exist.
                sp.out_all = Some(if who.role == Some("administrator") && !who.limited { 204 } else { 404 });
            }
            (sp, req(format!("/api/v1/auth/tokens/{id}"), Body::None))
        }

        // ---- the agent desktop ----
        ("post", "/api/v1/agent/login") => (spec(AGENT, false, 200), req(path.into(), Body::None)),
        ("post", "/api/v1/agent/ready") | ("post", "/api/v1/agent/not-ready") | ("post", "/api/v1/agent/logout") => {
            let body = if path.ends_with("not-ready") { j(json!({"pause_code": "break"})) } else { Body::None };
            let mut r = req(path.into(), body);
            r.prep.push(("post", "/api/v1/agent/login".into(), Value::Null));
            (spec(AGENT, false, 200), r)
        }
        ("post", "/api/v1/agent/preview/accept") | ("post", "/api/v1/agent/preview/skip") => {
            (spec(AGENT, false, 409), req(path.into(), j(json!({"record_id": fx.ra}))))
        }
        ("post", "/api/v1/agent/hang-up") => (spec(AGENT, false, 409), req(path.into(), j(json!({"call_id": 12345})))),
        ("post", "/api/v1/agent/disposition") => {
            (spec(AGENT, false, 409), req(path.into(), j(json!({"call_id": 12345, "disposition_id": fx.disp_a}))))
        }
        // No call of the caller's: refused with the field named, whoever asks.
        ("post", "/api/v1/agent/tags") => (spec(AGENT, false, 422), req(path.into(), j(json!({"call_id": 12345, "tag_id": fx.tag_a})))),
        ("get", "/api/v1/agent/state") => (spec(AGENT, false, 200), req(path.into(), Body::None)),
        ("get", "/api/v1/agent/events") => {
            let mut sp = spec(AGENT, false, 200);
            sp.sse = true;
            (sp, req(path.into(), Body::None))
        }

        // ---- audit ----
        ("get", "/api/v1/audit") => (spec(AUDIT, false, 200), req("/api/v1/audit?limit=1000".into(), Body::None)),
        ("get", "/api/v1/audit/export.csv") => (spec(AUDIT, false, 200), req(path.into(), Body::None)),
        _ => return None,
    })
}

/// The external id of the first record of a list.
async fn fx_ext(fx: &Fixture, list: i64) -> String {
    let (_, page) = get_json(&fx.admin, fx.url(&format!("/api/v1/contact-lists/{list}/records?limit=1"))).await;
    page["items"][0]["external_id"].as_str().unwrap().to_string()
}

struct Answer {
    status: u16,
    text: String,
}

async fn send(fx: &Fixture, who: &Who, method: &str, r: &Req, sse: bool) -> Answer {
    let mut c = who.client();
    for (m, path, body) in &r.prep {
        let _ = c.request(m.to_uppercase().parse().unwrap(), fx.url(path)).json(body).send().await;
    }
    if r.fresh_token && who.role.is_some() {
        let t = post_json(&c, fx.url("/api/v1/auth/tokens"), json!({"name": "spent"})).await.1;
        c = client_with(t["token"].as_str().unwrap());
    }
    let mut b = c.request(method.to_uppercase().parse().unwrap(), fx.url(&r.path));
    b = match &r.body {
        Body::None => b,
        Body::Json(v) => b.json(v),
        Body::Csv(text) => b.multipart(
            reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name("m.csv")),
        ),
    };
    let mut resp = b.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = if sse && status == 200 {
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        // The first event (the progress stream sends one at once; the agent's waits for notices).
        match tokio::time::timeout(std::time::Duration::from_millis(1500), resp.chunk()).await {
            Ok(Ok(Some(b))) => String::from_utf8_lossy(&b).to_string(),
            _ => String::new(),
        }
    } else {
        resp.text().await.unwrap()
    };
    Answer { status, text }
}

/// Nothing of a campaign outside the profile: no marked name, and no out id under a key that
/// names a campaign or a list.
fn assert_no_leak(fx: &Fixture, what: &str, text: &str) {
    assert!(!text.to_lowercase().contains(OUT), "{what}: leaks an object outside the profile:\n{text}");
    let out_c = fx.out_campaigns.lock().unwrap().clone();
    let out_l = fx.out_lists.lock().unwrap().clone();
    fn walk(v: &Value, key: &str, out_c: &BTreeSet<i64>, out_l: &BTreeSet<i64>, what: &str) {
        let bad = |ids: &BTreeSet<i64>, x: &Value| x.as_i64().is_some_and(|i| ids.contains(&i));
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if key == "campaigns" && k.parse::<i64>().is_ok_and(|i| out_c.contains(&i)) {
                        panic!("{what}: live figures of campaign {k} outside the profile");
                    }
                    walk(x, k, out_c, out_l, what);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, out_c, out_l, what)),
            x => {
                if matches!(key, "campaign_id" | "campaign_ids") && bad(out_c, x) {
                    panic!("{what}: {key} {x} is outside the profile");
                }
                // (`list_id` is also a DNC list's id; records and imports of other campaigns' lists
                // are caught by their marked names.)
                if key == "contact_list_ids" && bad(out_l, x) {
                    panic!("{what}: {key} {x} is a list of a campaign outside the profile");
                }
            }
        }
    }
    for chunk in text.split("data:") {
        if let Ok(v) = serde_json::from_str::<Value>(chunk.trim().split('\n').next().unwrap_or("")) {
            walk(&v, "", &out_c, &out_l, what);
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        walk(&v, "", &out_c, &out_l, what);
    }
}

/// Digits replaced, so "campaign 7 does not exist" and "campaign 999999 does not exist" compare equal.
fn shape(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let d = format!("{} {}", v["title"], v["detail"]);
    let mut out = String::new();
    let mut in_digits = false;
    for ch in d.chars() {
        if ch.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(ch);
        }
    }
    out
}

async fn run_matrix(backend: &str) {
    let (fx, people) = setup(backend).await;
    // The console first: the API's logout and token routes below end some of the callers' sessions.
    run_console_matrix(backend, &fx, &people).await;
    let (_, doc) = get_json(&reqwest::Client::new(), fx.url("/api/openapi.json")).await;
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.clone(), path.clone()));
        }
    }
    assert!(routes.len() > 60, "{backend}: the document lists {} operations", routes.len());
    let mut missing_cases = Vec::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    // Logout and token revocation change the caller; run them last.
    routes.sort_by_key(|(m, p)| (p.starts_with("/api/v1/auth/logout"), p.clone(), m.clone()));
    for (method, path) in &routes {
        for who in &people {
            let targets: &[Target] = &[Target::In, Target::Out, Target::Missing];
            let mut answers: HashMap<Target, Answer> = HashMap::new();
            for &t in targets {
                let Some((sp, r)) = case(&fx, who, method, path, t).await else {
                    if !missing_cases.contains(&format!("{method} {path}")) {
                        missing_cases.push(format!("{method} {path}"));
                    }
                    break;
                };
                if !sp.scoped && t == Target::Out {
                    continue;
                }
                if t == Target::Missing
                    && !r.path.contains(&MISSING.to_string())
                    && !matches!(&r.body, Body::Json(b) if b.to_string().contains(&MISSING.to_string()))
                {
                    continue;
                }
                let a = send(&fx, who, method, &r, sp.sse).await;
                checked += 1;
                let want = expected(&sp, who, t);
                let what = format!("{backend}: {} {} {} ({:?}) as {}", method.to_uppercase(), path, r.path, t, who.name);
                if a.status != want {
                    failures.push(format!("{what}: {} instead of {want}: {}", a.status, a.text.chars().take(300).collect::<String>()));
                }
                if who.limited {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| assert_no_leak(&fx, &what, &a.text)));
                    if let Err(e) = r {
                        let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
                        failures.push(msg.chars().take(600).collect());
                    }
                }
                answers.insert(t, a);
            }
            // Outside the profile answers exactly as "does not exist".
            if who.limited {
                if let (Some(o), Some(m)) = (answers.get(&Target::Out), answers.get(&Target::Missing)) {
                    if o.status != m.status || (o.status >= 400 && shape(&o.text) != shape(&m.text)) {
                        failures.push(format!(
                            "{backend}: {method} {path} as {}: outside the profile answers {} {:?}, a missing target {} {:?}",
                            who.name,
                            o.status,
                            shape(&o.text),
                            m.status,
                            shape(&m.text)
                        ));
                    }
                }
            }
        }
    }
    assert!(missing_cases.is_empty(), "{backend}: routes without a case in the matrix: {missing_cases:#?}");
    assert!(failures.is_empty(), "{backend}: {} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));

    // Counts over the reader's own campaigns only.
    let sup = people.iter().find(|w| w.name == "supervisor (listed)").unwrap();
    let (_, p) = get_json(&sup.client(), fx.url(&format!("/api/v1/settings-profiles/{}", fx.profile))).await;
    assert_eq!(p["campaign_count"], 1, "{backend}: the shared profile counts campaign A only for a supervisor limited to A: {p}");
    let (_, p) = get_json(&fx.admin, fx.url(&format!("/api/v1/settings-profiles/{}", fx.profile))).await;
    assert_eq!(p["campaign_count"], 2, "{backend}");
    // The shared record's calls: A's only.
    let (_, calls) = get_json(&sup.client(), fx.url(&format!("/api/v1/contact-lists/{}/records/{}/attempts", fx.ls, fx.rs))).await;
    assert_eq!(calls.as_array().unwrap().len(), 1, "{backend}: {calls}");
    let (_, calls) = get_json(&fx.admin, fx.url(&format!("/api/v1/contact-lists/{}/records/{}/attempts", fx.ls, fx.rs))).await;
    assert_eq!(calls.as_array().unwrap().len(), 2, "{backend}: {calls}");
}

#[tokio::test]
async fn authorization_matrix_sqlite() {
    run_matrix("sqlite").await;
}

#[tokio::test]
async fn authorization_matrix_postgres() {
    run_matrix("postgres").await;
}

/// A console page or form of the matrix: the API path its privileges come from (the console's
/// gate asks the API's table with the page's path under `/api/v1`; these are written here
/// independently), whether the target's campaign matters, and the path for a target.
struct Page {
    method: &'static str,
    privs: &'static [&'static str],
    scoped: bool,
    path: PathFn,
}

type PathFn = Box<dyn Fn(&Fixture, Target) -> String>;

fn page(method: &'static str, privs: &'static [&'static str], scoped: bool, path: impl Fn(&Fixture, Target) -> String + 'static) -> Page {
    Page { method, privs, scoped, path: Box::new(path) }
}

fn console_pages() -> Vec<Page> {
    let fixed = |p: &'static str| move |_: &Fixture, _: Target| p.to_string();
    vec![
        page("get", VIEW, false, fixed("/campaigns")),
        page("get", VIEW, true, |f, t| format!("/campaigns/{}", f.pick(t, f.a, f.b))),
        page("get", VIEW, true, |f, t| format!("/campaigns/{}/edit", f.pick(t, f.a, f.b))),
        page("get", VIEW, true, |f, t| format!("/campaigns/{}/available", f.pick(t, f.a, f.b))),
        page("get", VIEW, true, |f, t| format!("/campaigns/{}/preview", f.pick(t, f.a, f.b))),
        page("get", VIEW, true, |f, t| format!("/campaigns/{}/agents", f.pick(t, f.a, f.b))),
        page("post", EDIT, true, |f, t| format!("/campaigns/{}/pause", f.pick(t, f.a, f.b))),
        page("get", VIEW, false, fixed("/settings-profiles")),
        page("get", VIEW, false, fixed("/campaign-groups")),
        page("get", VIEW, false, fixed("/agent-groups")),
        page("get", LIST_READ, false, fixed("/contact-lists")),
        page("get", LIST_READ, true, |f, t| format!("/contact-lists/{}/records", f.pick(t, f.la, f.lb))),
        page("get", LIST_READ, true, |f, t| format!("/contact-lists/{}/records/{}", f.pick(t, f.la, f.lb), f.pick(t, f.ra, f.rb))),
        page("get", LIST_READ, true, |f, t| format!("/contact-lists/{}/import", f.pick(t, f.la, f.lb))),
        page("get", LIST_READ, true, |f, t| format!("/imports/{}", f.pick(t, f.ia, f.ib))),
        page("get", LIST_READ, true, |f, t| format!("/imports/{}/errors.csv", f.pick(t, f.ia, f.ib))),
        page("post", LIST_WRITE, true, |f, t| format!("/imports/{}/cancel", f.pick(t, f.ia, f.ib))),
        page("get", DNC, false, fixed("/dnc-lists")),
        page("get", DNC, false, |f, _| format!("/dnc-lists/{}/entries", f.dnc)),
        page("get", CATALOGUE_READ, false, fixed("/dispositions")),
        page("get", CATALOGUE_READ, true, |f, t| format!("/dispositions/{}", f.pick(t, f.disp_a, f.disp_b))),
        page("get", CATALOGUE_READ, false, fixed("/manager-tags")),
        page("get", CATALOGUE_READ, true, |f, t| format!("/manager-tags/{}", f.pick(t, f.tag_a, f.tag_b))),
        page("get", CATALOGUE_READ, false, fixed("/scripts")),
        page("get", USERS, false, fixed("/users")),
        page("get", USERS, true, |f, t| format!("/users/{}", f.pick(t, f.user_in, f.user_out))),
        page("get", USERS, false, fixed("/roles")),
        page("get", VIEW, false, fixed("/calling-hours")),
        page("get", AUDIT, false, fixed("/audit")),
        page("get", AGENT, false, fixed("/agent")),
        page("get", SIGNED_IN, false, fixed("/account")),
    ]
}

/// The console's routes x the same people x the same targets: anonymous GETs are sent to sign
/// in and POSTs refused with 401; a role without the privilege gets 403; a target outside a
/// limited user's profile answers exactly as one that does not exist (404), and no page shown
/// to a limited user names anything outside their profile.
async fn run_console_matrix(backend: &str, fx: &Fixture, people: &[Who]) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for who in people {
        let web = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut csrf = String::new();
        if who.role.is_some() {
            let (user, password) = if who.name == "administrator (all)" {
                ("admin".to_string(), ADMIN_PASSWORD)
            } else {
                (who.name.replace([' ', '(', ')'], "").to_lowercase(), "a long password")
            };
            let (s, me) = post_json(&web, fx.url("/api/v1/auth/login"), json!({"username": user, "password": password})).await;
            assert_eq!(s, 200, "{backend}: {} signs in: {me}", who.name);
            csrf = me["csrf_token"].as_str().unwrap().to_string();
        }
        for p in console_pages() {
            let mut statuses: HashMap<Target, (u16, String)> = HashMap::new();
            for t in [Target::In, Target::Out, Target::Missing] {
                if !p.scoped && t != Target::In {
                    continue;
                }
                let path = (p.path)(fx, t);
                let r = match p.method {
                    "get" => web.get(fx.url(&path)).send().await.unwrap(),
                    _ => web.post(fx.url(&path)).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap(),
                };
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                checked += 1;
                let what = format!("{backend}: console {} {path} ({t:?}) as {}", p.method.to_uppercase(), who.name);
                let allowed = p.privs.is_empty() || p.privs.iter().any(|x| who.privileges().contains(x));
                let fine = match (who.role, allowed, t) {
                    (None, _, _) => status == if p.method == "get" { 303 } else { 401 },
                    (_, false, _) => status == 403,
                    (_, true, Target::Missing) => status == 404,
                    (_, true, Target::Out) if who.limited => status == 404,
                    (_, true, _) => status < 500 && !matches!(status, 401 | 403 | 404),
                };
                if !fine {
                    failures.push(format!("{what}: {status}: {}", text.chars().take(200).collect::<String>()));
                }
                if who.limited && t != Target::Out && text.to_lowercase().contains(OUT) {
                    failures.push(format!("{what}: names an object outside the profile"));
                }
                statuses.insert(t, (status, text));
            }
            if who.limited {
                if let (Some(o), Some(m)) = (statuses.get(&Target::Out), statuses.get(&Target::Missing)) {
                    if o.0 != m.0 {
                        failures.push(format!("{backend}: console {} as {}: outside {} but missing {}", p.method, who.name, o.0, m.0));
                    }
                }
            }
        }
    }
    assert!(checked > 150, "{backend}: {checked} console checks");
    assert!(failures.is_empty(), "{backend}: {} of {checked} console checks failed:\n{}", failures.len(), failures.join("\n"));
}
