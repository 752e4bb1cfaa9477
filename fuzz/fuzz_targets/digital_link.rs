//! The GS1 Digital Link parser on arbitrary text: never panics, and what it
//! accepts prints to a path that parses back to the same link.
#![no_main]

use jejak_domain::gs1::DigitalLink;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(link) = DigitalLink::parse(text) {
        let again = DigitalLink::parse(&link.path()).expect("a parsed link's path parses");
        assert_eq!(again, link);
        let uri = link.uri("https://id.example.org");
        assert_eq!(DigitalLink::parse(&uri).expect("its URI parses"), link);
    }
});
