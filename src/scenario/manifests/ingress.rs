//! Ingress objects: rules by host and path, the default backend.

use emu_models::cluster::ingress::{BackendPort, IngressPathSpec, IngressRuleSpec, IngressSpec, PathType};
use emu_models::cluster::Origin;

use super::yaml::BackendY;
use super::{line_of, Doc, Loaded};

fn backend(o: &Origin, b: &BackendY) -> Result<(String, BackendPort), String> {
    if b.resource.is_some() {
        return Err(format!("{o}: resource backends are not modelled (use a Service backend)"));
    }
    let s = b.service.as_ref().ok_or_else(|| format!("{o}: a backend needs service"))?;
    match (s.port.number, &s.port.name) {
        (Some(n), _) => Ok((s.name.clone(), BackendPort::Number(n))),
        (None, Some(n)) => Ok((s.name.clone(), BackendPort::Name(n.clone()))),
        _ => Err(format!("{o}: backend service port is required")),
    }
}

/// The annotation that named an Ingress's class before `ingressClassName`.
const LEGACY_CLASS: &str = "kubernetes.io/ingress.class";

/// An Ingress.
pub(super) fn ingress(d: Doc, out: &mut Loaded) -> Result<(), String> {
    let Doc { obj, origin, name, namespace, .. } = d;
    let spec = obj.spec.ok_or_else(|| format!("{origin}: spec is required"))?;
    let o = Origin { line: line_of(&spec), ..origin.clone() };
    let s = spec.value;
    let mut rules = Vec::new();
    for r in &s.rules {
        let mut paths = Vec::new();
        for p in r.http.iter().flat_map(|h| &h.paths) {
            let (service, port) = backend(&o, &p.backend)?;
            let path_type = match p.path_type.as_deref() {
                Some("Exact") => PathType::Exact,
                None | Some("Prefix") | Some("ImplementationSpecific") => PathType::Prefix,
                Some(other) => {
                    return Err(format!("{o}: pathType `{other}` is not Exact, Prefix or ImplementationSpecific"))
                }
            };
            paths.push(IngressPathSpec {
                path: p.path.clone().unwrap_or_else(|| "/".into()),
                path_type,
                service,
                port,
            });
        }
        rules.push(IngressRuleSpec { host: r.host.clone(), paths });
    }
    let default_backend = match &s.default_backend {
        Some(b) => Some(backend(&o, b)?),
        None => None,
    };
    if s.tls.is_some() {
        out.warnings.push(format!("{o}: spec.tls: TLS termination is not modelled; requests are routed as plain HTTP"));
    }
    // The field, or the annotation it replaced (still honoured by
    // ingress-nginx); the field wins when both are set.
    let class = s.ingress_class_name.as_deref().map(|c| ("ingressClassName", c)).or_else(|| {
        obj.metadata.annotations.get(LEGACY_CLASS).map(|c| ("the kubernetes.io/ingress.class annotation", c.as_str()))
    });
    if let Some((what, c)) = class.filter(|(_, c)| *c != "nginx") {
        out.warnings.push(format!("{o}: {what} `{c}`: emu's one controller (ingress-nginx) serves it anyway"));
    }
    out.ingresses.push(IngressSpec { origin, name, namespace, rules, default_backend });
    Ok(())
}
