//! jejak-genealogy
