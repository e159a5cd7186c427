//! Typed row filters for `DATASOURCES:READ` JWT scopes.

use std::marker::PhantomData;

/// A typed handle on one datasource column, used to build filters. `#[derive(Datasource)]` generates a struct with
/// one public `Column<T>` field per column, `T` being the field's Rust type.
pub struct Column<T: ?Sized> {
    name: &'static str,
    _ty: PhantomData<fn() -> T>,
}

impl<T: ?Sized> Column<T> {
    /// A handle on the column named `name` (the wire name).
    pub const fn new(name: &'static str) -> Self {
        Column { name, _ty: PhantomData }
    }
    /// The column's wire name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<T: ?Sized> Clone for Column<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: ?Sized> Copy for Column<T> {}
impl<T: ?Sized> std::fmt::Debug for Column<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Column({})", self.name)
    }
}
