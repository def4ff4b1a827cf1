//! How records are written out (dump, tail): text, hex, json, raw.
