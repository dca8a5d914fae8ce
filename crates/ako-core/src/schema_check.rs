//! Test support: every body the core builds is checked against the controller's published schema
//! ([`ako_model::schema`], strict mode: no unknown or read-only field, exact JSON types, enumerations the controller
//! knows, integers in range, required fields present). The translation tests route their results through
//! [`assert_valid`], so each of them is also a schema test.

use ako_model::schema::{Mode, schemas};

use crate::plan::Desired;

/// Panics with every violation of every body, naming the object.
pub fn assert_valid(objects: &[Desired]) {
    let s = schemas();
    let mut problems = Vec::new();
    for d in objects {
        let obj_type = d.kind.obj_type();
        assert!(
            s.knows(obj_type),
            "no schema for {obj_type}: copy it into crates/ako-model/schema"
        );
        for v in s.validate_object(obj_type, &d.body, Mode::Strict) {
            problems.push(format!("{obj_type} {}: {v}", d.name));
        }
    }
    assert!(
        problems.is_empty(),
        "bodies the controller's schema refuses:\n{}",
        problems.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Kind;

    fn desired(kind: Kind, body: serde_json::Value) -> Desired {
        Desired {
            kind,
            name: "c--web".into(),
            body: body.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn a_body_the_schema_accepts_passes() {
        assert_valid(&[desired(
            Kind::Pool,
            json!({"name": "c--web", "created_by": "ako-c", "servers": [{"ip": {"addr": "127.0.0.1", "type": "V4"}, "port": 80}]}),
        )]);
    }

    #[test]
    #[should_panic(expected = "pool c--web: servers[0].port: expected an integer, found a string")]
    fn a_body_with_a_wrong_type_fails_naming_the_object_and_the_field() {
        assert_valid(&[desired(
            Kind::Pool,
            json!({"name": "c--web", "servers": [{"ip": {"addr": "127.0.0.1", "type": "V4"}, "port": "80"}]}),
        )]);
    }

    #[test]
    #[should_panic(expected = "vsvip c--web: created_by: VsVip has no field \"created_by\"")]
    fn a_field_the_kind_does_not_have_fails() {
        assert_valid(&[desired(
            Kind::VsVip,
            json!({"name": "c--web", "created_by": "ako-c"}),
        )]);
    }
}
