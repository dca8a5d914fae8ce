//! Typed CRUD over [`AviObject`] models: lists by page, gets by uuid or name, creates that adopt only what ako
//! owns, updates, patches, deletes, and the few untyped reads (DNS domains, virtual service runtime).

#[allow(clippy::wildcard_imports)]
use super::*;

impl AviClient {
    async fn json_call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, AviError> {
        let resp = self.send(method.clone(), path, body).await?;
        resp.json(&method, path)
    }

    /// GET a path under the controller and decode it.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, AviError> {
        self.json_call(Method::GET, path, None).await
    }

    /// One page of a collection.
    pub async fn list_page<T: AviObject>(
        &self,
        query: &ListQuery,
    ) -> Result<CollectionPage<T>, AviError> {
        let path = format!(
            "/api/{}?{}",
            T::OBJ_TYPE,
            query.to_query(self.inner.config.page_size)
        );
        self.get_json(&path).await
    }

    /// Every object matching the query, following `next` links.
    pub async fn list<T: AviObject>(&self, query: &ListQuery) -> Result<Vec<T>, AviError> {
        let mut out = Vec::new();
        self.list_each(query, |o| out.push(o)).await?;
        Ok(out)
    }

    /// Every object matching the query, handed to `f` page by page as the pages arrive (following `next`
    /// links), so a caller that keeps a compact form never holds every object of a large collection at once.
    pub async fn list_each<T: AviObject>(
        &self,
        query: &ListQuery,
        mut f: impl FnMut(T) + Send,
    ) -> Result<(), AviError> {
        let mut path = format!(
            "/api/{}?{}",
            T::OBJ_TYPE,
            query.to_query(self.inner.config.page_size)
        );
        loop {
            let page: CollectionPage<T> = self.get_json(&path).await?;
            let n = page.results.len();
            page.results.into_iter().for_each(&mut f);
            match page.next.as_deref().and_then(next_path) {
                Some(next) if n > 0 && next != path => path = next,
                _ => return Ok(()),
            }
        }
    }

    /// GET by uuid.
    pub async fn get<T: AviObject>(&self, uuid: &str) -> Result<T, AviError> {
        self.get_json(&format!("/api/{}/{}", T::OBJ_TYPE, uuid))
            .await
    }

    /// GET by uuid, `None` on 404.
    pub async fn get_opt<T: AviObject>(&self, uuid: &str) -> Result<Option<T>, AviError> {
        match self.get::<T>(uuid).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object with this name in the client's tenant, if any.
    pub async fn get_by_name<T: AviObject>(&self, name: &str) -> Result<Option<T>, AviError> {
        let page: CollectionPage<T> = self.list_page(&ListQuery::by_name(name)).await?;
        Ok(page.results.into_iter().find(|o| o.name() == name))
    }

    /// Whether an object of collection `obj_type` has this name in the client's tenant (one request, reading
    /// only the names).
    pub async fn exists(&self, obj_type: &str, name: &str) -> Result<bool, AviError> {
        if obj_type.is_empty() || !obj_type.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(AviError::Config(format!(
                "{obj_type:?} is not an Avi collection"
            )));
        }
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("name", name)
            .append_pair("fields", "name")
            .finish();
        let page: Value = self.get_json(&format!("/api/{obj_type}?{q}")).await?;
        Ok(page
            .get("results")
            .and_then(Value::as_array)
            .is_some_and(|r| {
                r.iter()
                    .any(|o| o.get("name").and_then(Value::as_str) == Some(name))
            }))
    }

    /// A controller certificate's PEM (`certificate.certificate`) by name in the client's tenant, with the
    /// names the controller lists for it (`certificate.subject_alt_names`); `None`: no such certificate.
    pub async fn certificate_of(
        &self,
        name: &str,
    ) -> Result<Option<(String, Vec<String>)>, AviError> {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("name", name)
            .append_pair("fields", "name,certificate")
            .finish();
        let page: Value = self
            .get_json(&format!("/api/sslkeyandcertificate?{q}"))
            .await?;
        let found = page.get("results").and_then(Value::as_array).and_then(|r| {
            r.iter()
                .find(|o| o.get("name").and_then(Value::as_str) == Some(name))
        });
        Ok(found.map(|o| {
            let cert = o.get("certificate");
            let pem = cert
                .and_then(|c| c.get("certificate"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let sans = cert
                .and_then(|c| c.get("subject_alt_names"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            (pem, sans)
        }))
    }

    /// POST. The client's `created_by` ([`ClientConfig::created_by`]) is stamped on an object that carries
    /// none. A 409 (duplicate name) re-reads the existing object by name and adopts it only when its
    /// `created_by` is this client's, else [`AviError::Conflict`] names the owner. After a failure that
    /// leaves open whether the POST was applied (transport error once sent, 5xx), the object is read back
    /// by name: found and ours, it is the result; absent, the POST is repeated (within the retry policy);
    /// unreadable, the error is [`AviError::OutcomeUnknown`].
    pub async fn create<T: AviObject>(&self, object: &T) -> Result<Created<T>, AviError> {
        let path = format!("/api/{}", T::OBJ_TYPE);
        let mut body = to_value(object, &path)?;
        if T::HAS_CREATED_BY
            && object.created_by().is_none()
            && let (Some(creator), Some(fields)) = (self.created_by(), body.as_object_mut())
        {
            fields.insert("created_by".into(), Value::String(creator.to_string()));
        }
        let expected = self.created_by().or(object.created_by());
        let mut backoff = self.backoff();
        loop {
            let err = match self
                .send_with_backoff(&Method::POST, &path, Some(&body), &mut backoff)
                .await
            {
                Ok(resp) => {
                    return Ok(Created {
                        object: resp.json(&Method::POST, &path)?,
                        already_existed: false,
                    });
                }
                Err(err) => err,
            };
            if err.is_conflict() {
                tracing::debug!(
                    obj_type = T::OBJ_TYPE,
                    name = object.name(),
                    "already exists; reading it back"
                );
                return match self.get_by_name::<T>(object.name()).await? {
                    Some(existing) => adopt(existing, expected, true),
                    None => Err(AviError::ConflictNotFound {
                        obj_type: T::OBJ_TYPE,
                        name: object.name().into(),
                    }),
                };
            }
            let AviError::OutcomeUnknown { source, .. } = err else {
                return Err(err);
            };
            // The POST may have been applied: learn it by name before repeating it.
            match self.get_by_name::<T>(object.name()).await {
                Ok(Some(existing)) => {
                    tracing::debug!(
                        obj_type = T::OBJ_TYPE,
                        name = object.name(),
                        error = %source,
                        "the failed create was applied; read back by name"
                    );
                    return adopt(existing, expected, false);
                }
                Ok(None) => {
                    tracing::debug!(
                        obj_type = T::OBJ_TYPE,
                        name = object.name(),
                        error = %source,
                        "the failed create was not applied; repeating it"
                    );
                    self.wait_before_retry(&Method::POST, &path, *source, &mut backoff)
                        .await?;
                }
                Err(read_err) => {
                    return Err(AviError::OutcomeUnknown {
                        method: Method::POST.to_string(),
                        path,
                        reason: format!(
                            "reading {:?} back by name failed: {read_err}",
                            object.name()
                        ),
                        source,
                    });
                }
            }
        }
    }

    /// PUT (full replacement) of an object that has a uuid.
    pub async fn update<T: AviObject>(&self, object: &T) -> Result<T, AviError> {
        let uuid = object.uuid().ok_or_else(|| AviError::MissingUuid {
            obj_type: T::OBJ_TYPE,
            name: object.name().into(),
        })?;
        let path = format!("/api/{}/{}", T::OBJ_TYPE, uuid);
        let body = to_value(object, &path)?;
        self.json_call(Method::PUT, &path, Some(&body)).await
    }

    /// PATCH `{"<op>": fields}`.
    pub async fn patch<T: AviObject>(
        &self,
        uuid: &str,
        op: PatchOp,
        fields: Value,
    ) -> Result<T, AviError> {
        let path = format!("/api/{}/{}", T::OBJ_TYPE, uuid);
        let mut body = serde_json::Map::new();
        body.insert(op.as_str().to_string(), fields);
        self.json_call(Method::PATCH, &path, Some(&Value::Object(body)))
            .await
    }

    /// DELETE by uuid.
    pub async fn delete<T: AviObject>(&self, uuid: &str) -> Result<(), AviError> {
        let path = format!("/api/{}/{}", T::OBJ_TYPE, uuid);
        self.send(Method::DELETE, &path, None).await.map(|_| ())
    }

    /// DELETE by uuid; `false` when it was already gone (404).
    pub async fn delete_if_exists<T: AviObject>(&self, uuid: &str) -> Result<bool, AviError> {
        match self.delete::<T>(uuid).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/ipamdnsproviderprofiledomainlist?cloud_uuid=…`.
    pub async fn dns_domains(&self, cloud_uuid: &str) -> Result<DomainList, AviError> {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("cloud_uuid", cloud_uuid)
            .finish();
        self.get_json(&format!("/api/ipamdnsproviderprofiledomainlist?{q}"))
            .await
    }

    /// `GET /api/virtualservice/<uuid>/runtime` (raw JSON).
    pub async fn vs_runtime(&self, uuid: &str) -> Result<Value, AviError> {
        self.get_json(&format!("/api/virtualservice/{uuid}/runtime"))
            .await
    }

    /// `POST /logout` on every logged-in session.
    pub async fn logout(&self) {
        let sessions: Vec<SessionSlot> = std::mem::take(&mut *self.inner.slots.lock());
        let mut returned = Vec::with_capacity(sessions.len());
        for mut slot in sessions {
            if slot.cookies.is_some() {
                let _ = self
                    .raw_request(&mut slot, &Method::POST, "/logout", None)
                    .await;
                slot.cookies = None;
            }
            returned.push(slot);
        }
        self.inner.slots.lock().extend(returned);
    }
}

/// Takes an existing object as the result of a create if it was created by `expected`.
pub(super) fn adopt<T: AviObject>(
    existing: T,
    expected: Option<&str>,
    already_existed: bool,
) -> Result<Created<T>, AviError> {
    match (existing.created_by(), expected) {
        (_, Some(expected)) if existing.owned_by(expected) => Ok(Created {
            object: existing,
            already_existed,
        }),
        (owner, expected) => Err(AviError::Conflict {
            obj_type: T::OBJ_TYPE,
            name: existing.name().to_string(),
            uuid: existing.uuid().map(str::to_string),
            owner: owner.map(str::to_string),
            expected: expected.map(str::to_string),
        }),
    }
}

pub(super) fn to_value<T: serde::Serialize>(object: &T, path: &str) -> Result<Value, AviError> {
    serde_json::to_value(object).map_err(|source| AviError::Decode {
        method: "serialize".into(),
        path: path.to_string(),
        source,
    })
}
