//! Tests of `client`.

use super::*;

#[test]
fn credentials_debug_never_shows_the_secret() {
    for creds in [
        Credentials::password("admin", "s3cr3t-pw"),
        Credentials::token("admin", "tok-123456"),
    ] {
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("admin") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(
            !shown.contains("s3cr3t-pw") && !shown.contains("tok-123456"),
            "{shown}"
        );
        let config = ClientConfig::new("10.0.0.1", creds);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cr3t-pw") && !shown.contains("tok-123456"),
            "{shown}"
        );
    }
}

#[test]
fn controller_addresses_normalise_to_an_https_base() {
    let cases = [
        ("10.10.10.10", Ok("https://10.10.10.10")),
        ("avi.lab:9443", Ok("https://avi.lab:9443")),
        ("https://avi.lab/", Ok("https://avi.lab")),
        ("https://127.0.0.1:8443", Ok("https://127.0.0.1:8443")),
        ("ftp://avi.lab", Err(())),
        ("http://avi.lab", Err(())),
        ("https://admin:pw@avi.lab", Err(())),
        ("HTTP://avi.lab:80", Err(())),
        ("", Err(())),
    ];
    for (input, want) in cases {
        assert_eq!(
            normalize_base(input, false).map_err(|_| ()),
            want.map(str::to_string),
            "{input}"
        );
    }
    assert_eq!(
        normalize_base("http://127.0.0.1:8080/", true)
            .ok()
            .as_deref(),
        Some("http://127.0.0.1:8080")
    );
    assert!(normalize_base("ftp://avi.lab", true).is_err());
}

#[test]
fn only_get_put_delete_and_patch_replace_are_idempotent() {
    let replace = serde_json::json!({"replace": {"description": "x"}});
    let add = serde_json::json!({"add": {"servers": []}});
    let mixed = serde_json::json!({"replace": {}, "delete": {}});
    let cases = [
        (Method::GET, None, true),
        (Method::PUT, Some(&replace), true),
        (Method::DELETE, None, true),
        (Method::PATCH, Some(&replace), true),
        (Method::PATCH, Some(&add), false),
        (Method::PATCH, Some(&mixed), false),
        (Method::PATCH, None, false),
        (Method::POST, Some(&replace), false),
    ];
    for (method, body, want) in cases {
        assert_eq!(is_idempotent(&method, body), want, "{method} {body:?}");
    }
}

#[test]
fn session_cookies_come_from_set_cookie_and_ignore_deletions() {
    let mut headers = HeaderMap::new();
    for v in [
        "csrftoken=3tHc4Xa16YxZ; expires=Tue, 20-Jul-2021 07:51:35 GMT; Max-Age=31449600; Path=/; Secure",
        "avi-sessionid=ecrd8sbr; expires=Wed, 22-Jul-2020 07:51:35 GMT; HttpOnly; Max-Age=86400; Path=/; Secure; SameSite=None",
        "sessionid=ecrd8sbr; HttpOnly; Max-Age=86400; Path=/; Secure",
        "other=1",
        "not a cookie",
    ] {
        headers.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_str(v).expect("header"),
        );
    }
    let mut cookies = SessionCookies::default();
    cookies.update(&headers);
    assert_eq!(
        (cookies.csrftoken.as_str(), cookies.session_id.as_str()),
        ("3tHc4Xa16YxZ", "ecrd8sbr")
    );
    assert_eq!(
        cookies.header(),
        "csrftoken=3tHc4Xa16YxZ; sessionid=ecrd8sbr; avi-sessionid=ecrd8sbr"
    );

    let mut later = HeaderMap::new();
    for v in [
        "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
        "sessionid=None; Path=/",
        "avi-sessionid=; Path=/",
    ] {
        later.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_str(v).expect("header"),
        );
    }
    cookies.update(&later);
    assert_eq!(cookies.session_id, "ecrd8sbr", "deletions are ignored");

    let shown = format!("{cookies:?}");
    let shown = format!(
        "{shown} {:?}",
        SessionSlot {
            cookies: Some(cookies)
        }
    );
    assert!(
        !shown.contains("3tHc4Xa16YxZ") && !shown.contains("ecrd8sbr"),
        "{shown}"
    );
}

#[test]
fn next_links_are_reduced_to_the_api_path() {
    let cases = [
        (
            "https://10.0.0.1/api/pool?page=2&page_size=100",
            Some("/api/pool?page=2&page_size=100"),
        ),
        (
            "https://evil.example//api/vsvip?page=3",
            Some("/api/vsvip?page=3"),
        ),
        ("https://host/other", None),
    ];
    for (next, want) in cases {
        assert_eq!(next_path(next).as_deref(), want, "{next}");
    }
}

#[test]
fn list_query_encodes_the_filters() {
    let q = ListQuery {
        name: Some("a b".into()),
        created_by: Some("ako-c1".into()),
        cloud_name: Some("Default-Cloud".into()),
        fields: vec!["name".into(), "uuid".into()],
        include_name: true,
        page_size: Some(500),
        extra: vec![("name.contains".into(), "c1--".into())],
    };
    assert_eq!(
        q.to_query(100),
        "name=a+b&created_by=ako-c1&cloud_ref.name=Default-Cloud&fields=name%2Cuuid&include_name=true\
             &name.contains=c1--&page_size=200"
    );
    assert_eq!(ListQuery::default().to_query(100), "page_size=100");
}
