//! What the column-wise JSON forms of schema 4 share
//! ([`crate::bucket_columns`], [`crate::failure_columns`],
//! [`crate::cpu_columns`]): reading either the columns (an object of
//! arrays) or the array of record objects older files hold, and the check
//! that every column has one value per record.

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

/// A record with a column-wise JSON form.
pub(crate) trait Columnar: Sized {
    /// The columns, as read.
    type Columns;
    /// What the reader expects, for its error messages.
    const EXPECTING: &'static str;
    /// The records of `columns`, or why the columns do not fit together.
    fn rows(columns: Self::Columns) -> Result<Vec<Self>, String>;
}

/// Reads records of type `T` from their columns or from an array of records.
pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: de::Deserializer<'de>,
    T: Columnar + Deserialize<'de>,
    T::Columns: Deserialize<'de>,
{
    d.deserialize_any(RowsOrColumns::<T>(PhantomData))
}

struct RowsOrColumns<T>(PhantomData<T>);

impl<'de, T> Visitor<'de> for RowsOrColumns<T>
where
    T: Columnar + Deserialize<'de>,
    T::Columns: Deserialize<'de>,
{
    type Value = Vec<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(row) = seq.next_element::<T>()? {
            out.push(row);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
        let columns = T::Columns::deserialize(de::value::MapAccessDeserializer::new(map))?;
        T::rows(columns).map_err(de::Error::custom)
    }
}

/// Checks that each of `others` (name, length) has as many values as the
/// `key` column (name, length): `"<kind> column <name> has <len> values,
/// <key> has <n>"` otherwise.
pub(crate) fn same_lengths(
    kind: &str,
    (key, n): (&str, usize),
    others: &[(&str, usize)],
) -> Result<(), String> {
    match others.iter().find(|(_, len)| *len != n) {
        Some((name, len)) => Err(format!(
            "{kind} column {name} has {len} values, {key} has {n}"
        )),
        None => Ok(()),
    }
}
