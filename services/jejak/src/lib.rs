//! jejak
