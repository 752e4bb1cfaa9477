//! jejak-testkit
