//! The words of the provenance page in Bahasa Indonesia (the default) and
//! English, the choice between them, and dates as people there read them
//! (Western Indonesian Time, UTC+7, where the shared factories are).

use jejak_read::provenance::{Stamp, Status, StepKind, VerdictOut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Id,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    /// `?lang=` wins; then the first of id/en the Accept-Language header
    /// ranks highest; then Bahasa Indonesia.
    pub fn choose(query_lang: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = query_lang.and_then(Lang::parse) {
            return l;
        }
        let mut best: Option<(f32, Lang)> = None;
        for (tag, q) in super::weighted(accept_language.unwrap_or("")) {
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Lang::parse(primary) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map_or(Lang::Id, |(_, l)| l)
    }

    fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            // "in" is the old ISO 639 code some Android browsers still send.
            "id" | "in" => Some(Lang::Id),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn t(self) -> &'static Words {
        match self {
            Lang::Id => &ID,
            Lang::En => &EN,
        }
    }
}

/// Every fixed phrase of the pages.
pub struct Words {
    pub site: &'static str,
    pub tagline: &'static str,
    pub lot: &'static str,
    pub serial: &'static str,
    pub gtin: &'static str,
    pub facility: &'static str,
    pub made: &'static str,
    pub status: &'static str,
    pub final_check: &'static str,
    pub produced_by: &'static str,
    pub produced_by_note: &'static str,
    pub suppliers: &'static str,
    pub inputs: &'static str,
    pub inputs_note: &'static str,
    pub received_from: &'static str,
    pub made_by_step: &'static str,
    pub owner: &'static str,
    pub origin: &'static str,
    pub no_inspection: &'static str,
    pub journey: &'static str,
    pub corrections: &'static str,
    pub corrections_none: &'static str,
    pub plots: &'static str,
    pub plots_note: &'static str,
    pub incomplete: &'static str,
    pub record: &'static str,
    pub verifiable: &'static str,
    pub verifiable_note: &'static str,
    pub checkpoint: &'static str,
    pub witnesses_title: &'static str,
    pub witnesses: &'static str,
    pub bundle: &'static str,
    pub data_links: &'static str,
    pub other_lang: &'static str,
    pub voided: &'static str,
    pub alert_title: &'static str,
    pub alert_input: &'static str,
    pub alert_voided: &'static str,
    pub alert_verdict: &'static str,
    pub alert_unchecked: &'static str,
    pub since: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub bad_title: &'static str,
    pub bad_body: &'static str,
    /// `{n}` is the count left out.
    pub more: &'static str,
    pub months: [&'static str; 12],
}

pub static ID: Words = Words {
    site: "jejak",
    tagline: "Asal-usul produk dari sentra industri bersama Jawa Tengah",
    lot: "Lot",
    serial: "Nomor seri",
    gtin: "GTIN",
    facility: "Sentra produksi",
    made: "Dibuat",
    status: "Status",
    final_check: "Pemeriksaan produk jadi",
    produced_by: "Diproduksi oleh UKM",
    produced_by_note: "Bagian tiap UKM dihitung dari bahan baku yang masuk ke lot ini.",
    suppliers: "Pemasok bahan baku",
    inputs: "Bahan baku dan pemeriksaannya",
    inputs_note: "Setiap lot bahan yang dipakai, dengan hasil uji terhadap standar yang disebut.",
    received_from: "Diterima dari",
    made_by_step: "Hasil proses",
    owner: "Milik",
    origin: "Asal",
    no_inspection: "Belum ada pemeriksaan tercatat",
    journey: "Perjalanan produk",
    corrections: "Koreksi catatan",
    corrections_none: "Tidak ada koreksi.",
    plots: "Lokasi asal kayu",
    plots_note: "Petak hutan asal kayu, digambar dari koordinatnya.",
    incomplete: "Silsilah lot ini lebih panjang dari yang ditampilkan di halaman ini.",
    record: "Catatan terakhir",
    verifiable: "Dapat diverifikasi",
    verifiable_note: "Setiap catatan di balik produk ini ada dalam log transparansi yang ditandatangani. Unduh bundel bukti dan periksa tanpa internet dengan jejak verify-bundle dan kunci log.",
    checkpoint: "Titik periksa",
    witnesses_title: "Saksi",
    witnesses: "saksi ikut menandatangani",
    bundle: "Unduh bundel bukti",
    data_links: "Data",
    other_lang: "English",
    voided: "dibatalkan",
    alert_title: "Perhatian",
    alert_input: "Bahan baku bermasalah",
    alert_voided: "Catatan pembuatan lot ini telah dibatalkan",
    alert_verdict: "Hasil pemeriksaan produk jadi",
    alert_unchecked: "Silsilah lot ini terlalu panjang untuk diperiksa seluruhnya di sini; bahan yang paling jauh belum diperiksa statusnya.",
    since: "sejak",
    not_found_title: "Label tidak dikenal",
    not_found_body:
        "Kami tidak menemukan produk dengan label ini. Periksa kembali kodenya, atau tanyakan kepada penjual.",
    bad_title: "Alamat label tidak sah",
    bad_body: "Alamat ini bukan GS1 Digital Link yang sah.",
    more: "… dan {n} lainnya: lihat data lengkap",
    months: [
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ],
};

pub static EN: Words = Words {
    site: "jejak",
    tagline: "Where products of Central Java's shared factories come from",
    lot: "Lot",
    serial: "Serial number",
    gtin: "GTIN",
    facility: "Shared facility",
    made: "Made",
    status: "Status",
    final_check: "Finished product inspection",
    produced_by: "Produced by UKM",
    produced_by_note: "Each UKM's share is computed from the raw materials that went into this lot.",
    suppliers: "Raw material suppliers",
    inputs: "Raw materials and their inspections",
    inputs_note: "Every input lot used, with its test result against the named standard.",
    received_from: "Received from",
    made_by_step: "Made by",
    owner: "Owned by",
    origin: "Origin",
    no_inspection: "No inspection recorded yet",
    journey: "The product's journey",
    corrections: "Corrections",
    corrections_none: "No corrections.",
    plots: "Where the timber grew",
    plots_note: "Forest plots the timber came from, drawn from their coordinates.",
    incomplete: "This lot's genealogy is longer than this page shows.",
    record: "Latest record",
    verifiable: "Verifiable",
    verifiable_note: "Every record behind this product is in a signed transparency log. Download the proof bundle and check it offline with jejak verify-bundle and the log's key.",
    checkpoint: "Checkpoint",
    witnesses_title: "Witnesses",
    witnesses: "witnesses cosigned it",
    bundle: "Download the proof bundle",
    data_links: "Data",
    other_lang: "Bahasa Indonesia",
    voided: "voided",
    alert_title: "Attention",
    alert_input: "Problem with a raw material",
    alert_voided: "The record that made this lot was voided",
    alert_verdict: "Finished product inspection",
    alert_unchecked: "This lot's genealogy is too long to check here in full; the furthest inputs were not checked.",
    since: "since",
    not_found_title: "Unknown label",
    not_found_body: "We found no product with this label. Check the code again, or ask the seller.",
    bad_title: "Not a valid label address",
    bad_body: "This address is not a valid GS1 Digital Link.",
    more: "… and {n} more: see the full data",
    months: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
};

impl Words {
    pub fn verdict(&self, v: Option<VerdictOut>) -> &'static str {
        let id = std::ptr::eq(self, &ID);
        match (v, id) {
            (Some(VerdictOut::Conformant), true) => "memenuhi syarat",
            (Some(VerdictOut::NonConformant), true) => "tidak memenuhi syarat",
            (Some(VerdictOut::Hold), true) => "ditahan, menunggu keputusan",
            (None, true) => "tanpa keputusan",
            (Some(VerdictOut::Conformant), false) => "conforms",
            (Some(VerdictOut::NonConformant), false) => "does not conform",
            (Some(VerdictOut::Hold), false) => "on hold, awaiting a decision",
            (None, false) => "no verdict",
        }
    }

    pub fn status(&self, s: Status) -> &'static str {
        let id = std::ptr::eq(self, &ID);
        match (s, id) {
            (Status::Active, true) => "aktif",
            (Status::OnHold, true) => "DITAHAN",
            (Status::Released, true) => "dilepas setelah ditahan",
            (Status::Recalled, true) => "DITARIK DARI PEREDARAN",
            (Status::Disposed, true) => "dimusnahkan",
            (Status::Active, false) => "active",
            (Status::OnHold, false) => "ON HOLD",
            (Status::Released, false) => "released after a hold",
            (Status::Recalled, false) => "RECALLED",
            (Status::Disposed, false) => "disposed of",
        }
    }

    pub fn step(&self, k: StepKind) -> &'static str {
        let id = std::ptr::eq(self, &ID);
        match (k, id) {
            (StepKind::Receipt, true) => "Penerimaan",
            (StepKind::Inspection, true) => "Pemeriksaan",
            (StepKind::Processing, true) => "Pengolahan",
            (StepKind::Packing, true) => "Pengemasan",
            (StepKind::Shipment, true) => "Pengiriman",
            (StepKind::Status, true) => "Perubahan status",
            (StepKind::Correction, true) => "Koreksi",
            (StepKind::Receipt, false) => "Receipt",
            (StepKind::Inspection, false) => "Inspection",
            (StepKind::Processing, false) => "Processing",
            (StepKind::Packing, false) => "Packing",
            (StepKind::Shipment, false) => "Shipment",
            (StepKind::Status, false) => "Status change",
            (StepKind::Correction, false) => "Correction",
        }
    }

    /// What was voided, in words.
    pub fn voided_what(&self, what: &str) -> &'static str {
        let id = std::ptr::eq(self, &ID);
        match (what, id) {
            ("inspection", true) => "pemeriksaan",
            ("receipt", true) => "penerimaan",
            ("processing", true) => "pengolahan",
            ("packing", true) => "pengemasan",
            ("shipment", true) => "pengiriman",
            ("status", true) => "perubahan status",
            (_, true) => "catatan",
            ("inspection", false) => "inspection",
            ("receipt", false) => "receipt",
            ("processing", false) => "processing",
            ("packing", false) => "packing",
            ("shipment", false) => "shipment",
            ("status", false) => "status change",
            (_, false) => "record",
        }
    }

    /// "11 September 2026".
    pub fn date(&self, t: Stamp) -> String {
        let (y, m, d, _, _) = t.wib();
        format!("{d} {} {y}", self.months.get(m as usize - 1).copied().unwrap_or(""))
    }

    /// "11 September 2026, 14.00 WIB" (Indonesian) or "14:00 WIB" (English).
    pub fn date_time(&self, t: Stamp) -> String {
        let (_, _, _, hh, mm) = t.wib();
        let sep = if std::ptr::eq(self, &ID) { '.' } else { ':' };
        format!("{}, {hh:02}{sep}{mm:02} WIB", self.date(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_in_western_indonesian_time() {
        // 2026-09-11T07:30:00Z is 14.30 WIB.
        let t = Stamp(1_789_111_800 * 1_000_000_000);
        assert_eq!(ID.date_time(t), "11 September 2026, 14.30 WIB");
        assert_eq!(EN.date(t), "11 September 2026");
        // 20:00Z on the last day of a leap February is already 1 March in WIB.
        let t = Stamp(1_709_236_800 * 1_000_000_000);
        assert_eq!(ID.date(t), "1 Maret 2024");
    }

    #[test]
    fn the_language_follows_the_query_then_accept_language() {
        assert_eq!(Lang::choose(None, None), Lang::Id);
        assert_eq!(Lang::choose(Some("en"), Some("id")), Lang::En);
        assert_eq!(Lang::choose(Some("xx"), Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(Lang::choose(None, Some("fr-FR, en;q=0.5, id;q=0.8")), Lang::Id);
        assert_eq!(Lang::choose(None, Some("de, en;q=0.3")), Lang::En);
        assert_eq!(Lang::choose(None, Some("en;q=0")), Lang::Id);
        assert_eq!(Lang::choose(None, Some("in-ID")), Lang::Id);
        assert_eq!(Lang::choose(None, Some("ja")), Lang::Id);
        assert_eq!(Lang::choose(None, Some("id;Q=0.2, en;Q=0.8")), Lang::En);
    }
}
