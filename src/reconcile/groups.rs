//! A group's translation and plan: the desired objects of a Service group or an L7 part, and the objects each one produces.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The endpoints of each Service, from the view (translation's inputs borrow them).
fn endpoints_of(view: &View, services: &[Arc<Service>]) -> Vec<Vec<l4::EndpointGroup>> {
    services
        .iter()
        .map(|s| view.endpoints(&ObjKey::of(&s.metadata)))
        .collect()
}

/// Each Service with its endpoints, as translation reads them.
fn service_inputs<'a>(
    services: &'a [Arc<Service>],
    endpoints: &'a [Vec<l4::EndpointGroup>],
) -> Vec<ServiceInput<'a>> {
    services
        .iter()
        .zip(endpoints)
        .map(|(s, e)| ServiceInput {
            service: s,
            endpoints: e,
        })
        .collect()
}

/// Translates Services with their endpoints from the view.
pub(super) fn translate(
    view: &View,
    services: &[Arc<Service>],
    nodes: &[l4::NodeInfo],
    cfg: &Config,
    placement: &Placement,
) -> L4Desired {
    let endpoints = endpoints_of(view, services);
    l4::translate(&service_inputs(services, &endpoints), nodes, cfg, placement)
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    /// The TLS Secrets translating `hosts` of a part reads: those the Ingresses claiming them name, their
    /// HostRules' and the default certificate.
    pub(super) fn secrets_of_part(
        &self,
        state: &State,
        hosts: &BTreeSet<String>,
    ) -> BTreeSet<ObjKey> {
        let mut keys = state.l7.claimants_of(hosts).2;
        keys.extend(self.settings.default_cert.clone());
        // A HostRule's certificate from a Secret (`type: secret`).
        let rules = rules::rule_set(state);
        keys.extend(hosts.iter().flat_map(|h| rules.host_rule_secrets(h)));
        keys
    }

    /// The desired objects of a Service group.
    pub(super) fn translate_services(
        &self,
        state: &State,
        g: &GroupId,
        nodes: &[l4::NodeInfo],
    ) -> L4Desired {
        let members: Vec<Arc<Service>> = state
            .members
            .get(g)
            .into_iter()
            .flatten()
            .filter_map(|k| self.view.service(k))
            .collect();
        if self.settings.delete_all {
            return L4Desired {
                objects: Vec::new(),
                outcomes: members
                    .iter()
                    .map(|s| ServiceOutcome::left_out(ObjKey::of(&s.metadata), Vec::new()))
                    .collect(),
            };
        }
        let keys: Vec<ObjKey> = members.iter().map(|s| ObjKey::of(&s.metadata)).collect();
        let rules = rules::rule_set(state);
        let bindings: Vec<(ObjKey, Option<String>)> = members
            .iter()
            .zip(&keys)
            .map(|(s, key)| {
                let ns = self.view.namespace_infra(&key.namespace);
                let bound =
                    ako_core::crd::infra::bound(s.metadata.annotations.as_ref(), ns.as_deref());
                (key.clone(), bound)
            })
            .collect();
        let (placement, placed) = ako_core::crd::infra::group_placement(
            &bindings,
            Some(&rules),
            &self.settings.placement,
        );
        let mut d = translate(&self.view, &members, nodes, &self.cfg, &placement);
        for (key, problem) in placed {
            if let Some(o) = d.outcomes.iter_mut().find(|o| o.key == key) {
                o.problems.push(problem);
            }
        }
        let named: Vec<ako_core::crd::L4Member<'_>> = members
            .iter()
            .zip(&keys)
            .map(|(s, key)| ako_core::crd::L4Member {
                key,
                annotations: s.metadata.annotations.as_ref(),
            })
            .collect();
        ako_core::crd::apply_l4_rules(&mut d, &named, Some(&rules));
        d
    }

    /// Translates these hosts of a part again (each with every Ingress claiming it).
    pub(super) fn translate_hosts(
        &self,
        state: &State,
        part: &Part,
        hosts: &BTreeSet<String>,
        nodes: &[l4::NodeInfo],
        secrets: &BTreeMap<ObjKey, Option<TlsPair>>,
    ) -> Vec<HostFragment> {
        if hosts.is_empty() || self.settings.delete_all {
            return Vec::new();
        }
        let (ingress_keys, service_keys, _) = state.l7.claimants_of(hosts);
        let members: Vec<Arc<Ingress>> = ingress_keys
            .iter()
            .filter_map(|k| self.view.ingress(k))
            .collect();
        let services: Vec<Arc<Service>> = service_keys
            .iter()
            .filter_map(|k| self.view.service(k))
            .collect();
        let endpoints = endpoints_of(&self.view, &services);
        let inputs = service_inputs(&services, &endpoints);
        let refs: Vec<&Ingress> = members.iter().map(AsRef::as_ref).collect();
        let default_cert = self
            .settings
            .default_cert
            .as_ref()
            .and_then(|k| secrets.get(k))
            .and_then(Option::as_ref);
        let rules = rules::rule_set(state);
        let classes = self.view.classes();
        let namespace_infra: BTreeMap<String, String> = refs
            .iter()
            .filter_map(|i| i.metadata.namespace.clone())
            .collect::<BTreeSet<String>>()
            .into_iter()
            .filter_map(|ns| Some((ns.clone(), self.view.namespace_infra(&ns)?)))
            .collect();
        let input = L7Input {
            classes: Some(&classes),
            namespace_infra: Some(&namespace_infra),
            ingresses: &refs,
            services: &inputs,
            nodes,
            secrets,
            default_cert,
            part: Some(part),
            rules: (!rules.is_empty()).then_some(&*rules),
        };
        l7::translate_hosts(
            &input,
            &self.cfg,
            &self.settings.placement,
            self.settings.shard,
            Some(hosts),
        )
        .0
    }

    /// The objects of a shared parent (none in dedicated mode: a host's fragment holds its virtual service): its
    /// VsVip, its own HTTPPolicySet (404 for a host it does not serve) and the VirtualService.
    pub(super) fn parent_ids(&self, part: &Part) -> Vec<ObjId> {
        match part {
            Part::Shard { index, infra, .. } => {
                let parent =
                    l7::shared_vs_name_in(&self.cfg.cluster_name, infra.as_deref(), *index);
                [Kind::VsVip, Kind::HttpPolicySet, Kind::VirtualService]
                    .into_iter()
                    .map(|kind| obj_id(kind, &parent))
                    .collect()
            }
            Part::Host(_) => Vec::new(),
        }
    }

    /// The hosts of a part whose objects a pass compares: those translated again, or (`all`) every host the part
    /// serves or produced objects for.
    pub(super) fn plan_scope(
        &self,
        state: &State,
        part: &Part,
        hosts: &BTreeSet<String>,
        all: bool,
    ) -> BTreeSet<String> {
        let mut scope = hosts.clone();
        if all {
            scope.extend(
                state
                    .l7
                    .serving_hosts(part)
                    .iter()
                    .map(|(h, _)| (*h).to_string()),
            );
            scope.extend(
                state
                    .produced_host
                    .keys()
                    .filter(|h| state.l7.part_of_host(h) == *part)
                    .cloned(),
            );
        }
        scope
    }

    /// The objects of a part to compare: its parent (from the hosts it serves, when `parent`: it may have
    /// changed) and `fresh`, the objects of the hosts translated again (every host of the part when a pass
    /// compares everything); with the ids of every object the hosts in scope had or have.
    pub(super) fn part_objects(
        &self,
        state: &State,
        part: &Part,
        scope: &BTreeSet<String>,
        parent: bool,
        fresh: Vec<Desired>,
    ) -> (Vec<Desired>, HashSet<ObjId>) {
        let mut objects = if parent {
            let serving: Vec<l7::Serving<'_>> = state
                .l7
                .serving_hosts(part)
                .into_iter()
                .map(|(h, f)| l7::Serving {
                    host: h,
                    policy: f.parent_policy.as_deref(),
                    aliases: &f.aliases,
                })
                .collect();
            let rules = rules::rule_set(state);
            let place = l7::part_placement(part, &self.settings.placement, Some(&rules));
            l7::assemble_parent(&self.cfg, &place, part, &serving)
        } else {
            Vec::new()
        };
        let mut ids: HashSet<ObjId> = HashSet::new();
        if parent {
            ids.extend(self.parent_ids(part));
        }
        for h in scope {
            ids.extend(state.produced_host.get(h).into_iter().flatten().cloned());
        }
        let mut seen: HashSet<ObjId> = objects.iter().map(|d| obj_id(d.kind, &d.name)).collect();
        for o in fresh {
            // The default certificate is one object, whichever hosts use it.
            if seen.insert(obj_id(o.kind, &o.name)) {
                objects.push(o);
            }
        }
        // The default certificate is shared by every host using it: while any host anywhere wants it, it is
        // not this part's to delete.
        let default_cert = (
            Kind::SslKeyAndCertificate,
            l7::default_cert_name(&self.cfg.cluster_name),
        );
        if !seen.contains(&obj_id(default_cert.0, &default_cert.1))
            && state
                .l7
                .fragments
                .values()
                .any(|f| f.ids.contains(&default_cert))
        {
            ids.remove(&obj_id(default_cert.0, &default_cert.1));
        }
        (objects, ids)
    }

    /// Plans a group's objects against what ako holds of `ids` and the objects themselves; records what the
    /// group now produces (what it wants, and what is still to delete) for a Service group.
    pub(super) fn plan_ids(
        &self,
        state: &mut State,
        g: &GroupId,
        mut objects: Vec<Desired>,
        mut ids: HashSet<ObjId>,
        can_delete: bool,
    ) -> Vec<Step> {
        for d in &mut objects {
            self.identity.stamp(d.kind == Kind::VsVip, &mut d.body);
        }
        ids.extend(objects.iter().map(|d| obj_id(d.kind, &d.name)));
        let wanted: Vec<ObjId> = match g {
            GroupId::Service(_) => objects.iter().map(|d| obj_id(d.kind, &d.name)).collect(),
            GroupId::L7(_) => Vec::new(),
        };
        // Identities only: a cached body is read (decompressed and parsed) when its object is compared, and
        // dropped after.
        let known: Vec<plan::Known> = ids
            .iter()
            .filter_map(|id| {
                state.cache.get(id).map(|c| plan::Known {
                    kind: c.kind,
                    uuid: c.uuid.to_string(),
                    name: id.1.clone(),
                    created_by: c.created_by.as_deref().map(String::from),
                })
            })
            .collect();
        let cache = &state.cache;
        let unreadable: std::cell::RefCell<Vec<ObjId>> = Default::default();
        let steps = plan::plan_with(objects, &known, can_delete, &self.owner, |k| {
            let id = obj_id(k.kind, &k.name);
            let body = cache.get(&id).and_then(Cached::body);
            if body.is_none() {
                unreadable.borrow_mut().push(id);
            }
            body
        });
        state.unreadable.extend(
            unreadable
                .into_inner()
                .into_iter()
                .map(|id| (id, g.clone())),
        );
        if let GroupId::Service(_) = g {
            // Keep what is still to delete in `produced`, so a failed pass cleans up later; a pass that may not
            // delete leaves it to the orphan scan.
            let mut keep: HashSet<ObjId> = wanted.into_iter().collect();
            let stale = state.stale_to_keep(ids, |id| keep.contains(id), can_delete);
            keep.extend(stale);
            if keep.is_empty() {
                state.produced.remove(g);
            } else {
                state.produced.insert(g.clone(), keep);
            }
        }
        steps
    }

    /// Records what each host of a part in scope produces (what it wants, and what is still to delete), and the
    /// part's parent objects (full syncs delete only what no group or host produces).
    /// `can_delete` false: what a host or the parent no longer wants is left to the orphan scan.
    pub(super) fn update_produced_hosts(
        &self,
        state: &mut State,
        part: &Part,
        scope: &BTreeSet<String>,
        can_delete: bool,
    ) {
        for h in scope {
            let mut keep: Vec<ObjId> = state
                .l7
                .fragments
                .get(h)
                .map(|f| f.ids.iter().map(|(k, n)| obj_id(*k, n)).collect())
                .unwrap_or_default();
            if let Some(old) = state.produced_host.remove(h) {
                let stale = state.stale_to_keep(old, |id| keep.contains(id), can_delete);
                keep.extend(stale);
            }
            keep.sort_unstable();
            keep.dedup();
            keep.shrink_to_fit();
            if !keep.is_empty() {
                state.produced_host.insert(h.clone(), keep);
            }
        }
        // The part's own entry holds its parent's objects; its hosts' objects are in `produced_host` (not copied
        // here: the orphan scan reads both).
        let g = GroupId::L7(part.clone());
        let wanted = !state.l7.serving_hosts(part).is_empty();
        // A parent serving hosts wants its VsVip, its own policy set and its virtual service; once it serves
        // none, they are only still to delete.
        let still_wanted = |_: &ObjId| wanted;
        let parent: HashSet<ObjId> = self
            .parent_ids(part)
            .into_iter()
            .filter(|id| still_wanted(id) || (can_delete && state.cache.contains_key(id)))
            .collect();
        if !can_delete
            && self
                .parent_ids(part)
                .iter()
                .any(|id| !still_wanted(id) && state.cache.contains_key(id))
        {
            state.orphan_scan_due = true;
        }
        let hosts = state
            .produced_host
            .keys()
            .any(|h| state.l7.part_of_host(h) == *part);
        if parent.is_empty() && !hosts {
            state.produced.remove(&g);
        } else {
            state.produced.insert(g, parent);
        }
    }
}
