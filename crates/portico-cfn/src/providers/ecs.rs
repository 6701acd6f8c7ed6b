//! Provider placeholder for ecs (filled in below).

use super::{unsupported, Done, PResult, Pcx};
use serde_json::{Map, Value};

pub(super) async fn create(_cx: &Pcx<'_>, ty: &str, _props: &Value) -> PResult<Done> {
    Err(unsupported(ty))
}

pub(super) async fn stabilize(_cx: &Pcx<'_>, _ty: &str, _done: &mut Done) -> PResult<()> {
    Ok(())
}

pub(super) async fn update(
    _cx: &Pcx<'_>,
    ty: &str,
    _physical: &str,
    _old: &Value,
    _new: &Value,
    _attrs: &Map<String, Value>,
) -> PResult<Done> {
    Err(unsupported(ty))
}

pub(super) async fn delete(
    _cx: &Pcx<'_>,
    ty: &str,
    _physical: &str,
    _props: &Value,
    _attrs: &Map<String, Value>,
) -> PResult<()> {
    Err(unsupported(ty))
}
