//! The console's two languages: Bahasa Indonesia (the default) and
//! English. Every text is written in both where it is used
//! (`lang.pick("Terima bahan", "Receive material")`), and the refusals of
//! the rules are told in the console's language.

use jejak_proto::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Id,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Lang {
        match s {
            "en" => Lang::En,
            _ => Lang::Id,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    pub fn pick(self, id: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }
}

/// A refusal as the console shows it: next to `field` (a form field's
/// name) when it concerns one, in the console's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub field: Option<String>,
    pub message: String,
    /// The write-side rule that refused, if one did.
    pub rule: Option<String>,
    /// The server's own words, for placing a rule's refusal.
    pub detail: String,
}

/// The form field a refusal's field path concerns: a quantity's parts are
/// the form's `quantity` and `unit` fields, other paths are the fields' names
/// (`origin.place`, `lot_id`).
fn form_field(field: &str) -> String {
    match field {
        "quantity.unit" => "unit".into(),
        f if f.starts_with("quantity.") => "quantity".into(),
        f => f.to_string(),
    }
}

/// A refusal told in `lang`: what the rule means in words a clerk uses,
/// with the server's exact detail after it.
pub fn refusal(lang: Lang, code: ErrorCode, rule: Option<&str>, field: Option<&str>, detail: &str) -> Shown {
    let said = match (lang, rule, code) {
        (Lang::Id, Some("mass-balance"), _) => "Jumlahnya melebihi sisa lot",
        (Lang::Id, Some("unit-mismatch"), _) => "Satuannya tidak cocok dengan satuan lot",
        (Lang::Id, Some("lot-not-usable"), _) => "Lot ini sedang ditahan, ditarik, dimusnahkan atau tidak lolos uji",
        (Lang::Id, Some("wrong-facility"), _) => "Lot ini ada di fasilitas lain",
        (Lang::Id, Some("party-role"), _) => "Pihak ini tidak punya peran yang diperlukan",
        (Lang::Id, Some("product-mismatch"), _) => "Produknya tidak cocok",
        (Lang::Id, Some("not-voidable"), _) => "Kejadian ini tidak bisa dibatalkan",
        (Lang::Id, Some("status-transition"), _) => "Status lot tidak bisa diubah seperti itu",
        (Lang::Id, Some("not-in-transit"), _) => "Lot sumber tidak sedang dikirim ke fasilitas ini",
        (Lang::Id, Some("timber-legality"), _) => {
            "Kayu ini perlu dokumen legalitas (SVLK/DKP) dan dokumen angkutan yang berlaku"
        }
        (Lang::Id, _, ErrorCode::InvalidArgument) => "Isian ini tidak benar",
        (Lang::Id, _, ErrorCode::NotFound) => "Tidak ditemukan",
        (Lang::Id, _, ErrorCode::AlreadyExists) => "Sudah ada",
        (Lang::Id, _, ErrorCode::PermissionDenied | ErrorCode::Unauthenticated) => "Anda tidak berwenang melakukan ini",
        (Lang::Id, _, _) => "Tidak bisa dicatat sekarang; coba lagi",
        (Lang::En, Some(_), _) => "A rule refuses this",
        (Lang::En, _, ErrorCode::InvalidArgument) => "This entry is not right",
        (Lang::En, _, ErrorCode::NotFound) => "Not found",
        (Lang::En, _, ErrorCode::AlreadyExists) => "Already exists",
        (Lang::En, _, ErrorCode::PermissionDenied | ErrorCode::Unauthenticated) => "You may not do this",
        (Lang::En, _, _) => "This cannot be recorded now; try again",
    };
    // A rule is told in the clerk's language alone (placed next to its
    // field by `place`); malformed input keeps the server's exact words.
    let message = match (lang, rule) {
        (Lang::Id, Some(_)) => format!("{said}."),
        _ => format!("{said}: {detail}"),
    };
    Shown {
        field: field.map(form_field),
        message,
        rule: rule.map(str::to_string),
        detail: detail.to_string(),
    }
}

/// Where a rule's refusal goes on a form, and what it says there: next to
/// the field the server's words begin with (`owner_id: …`), else next to
/// the lot they name, else next to the rule's own field; naming the lot.
pub fn place(lang: Lang, mut shown: Shown, fields: &[(String, String)]) -> Shown {
    let Some(rule) = shown.rule.clone() else { return shown };
    if shown.field.is_some() {
        return shown;
    }
    let named = |name: &str| fields.iter().any(|(k, _)| k == name);
    let leading = shown
        .detail
        .split_once(':')
        .map(|(f, _)| f.trim().to_string())
        .filter(|f| named(f));
    let lot = fields
        .iter()
        .filter(|(k, v)| k.ends_with("lot_id") && v.len() >= 2 && shown.detail.contains(&format!("{v:?}")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .next();
    let fallback = match rule.as_str() {
        "status-transition" => Some("status"),
        "not-voidable" => Some("event_id"),
        "timber-legality" => Some("doc0.kind"),
        "unit-mismatch" => Some("unit"),
        "product-mismatch" => Some("gtin"),
        _ => None,
    }
    .filter(|f| named(f))
    .map(str::to_string);
    shown.field = leading.or_else(|| lot.as_ref().map(|(k, _)| k.clone())).or(fallback);
    if let (Lang::Id, Some((_, lot))) = (lang, &lot) {
        shown.message = match rule.as_str() {
            "lot-not-usable" => {
                format!("Lot {lot} sedang ditahan, ditarik, dimusnahkan atau tidak lolos uji; tidak bisa dipakai.")
            }
            "wrong-facility" => format!("Lot {lot} ada di fasilitas lain."),
            "status-transition" => format!("Status lot {lot} tidak bisa diubah seperti itu."),
            "unit-mismatch" => format!("Satuannya tidak cocok dengan satuan lot {lot}."),
            "product-mismatch" => format!("Produknya tidak cocok dengan lot {lot}."),
            _ => shown.message,
        };
    }
    shown
}

/// The sentence for a lot that has less left than asked, in `lang`:
/// "Lot DMK-GKG-260902-01 tinggal 10 kg; tidak bisa memakai 15 kg".
pub fn too_little(lang: Lang, lot: &str, left: &str, wanted: &str) -> String {
    match lang {
        Lang::Id => format!("Lot {lot} tinggal {left}; tidak bisa memakai {wanted}"),
        Lang::En => format!("Lot {lot} has {left} left; {wanted} cannot be used"),
    }
}

/// The sentence for a capture sent again after its record was voided, in
/// `lang`: recorded before, voided by `void`, so not standing.
pub fn voided_earlier(lang: Lang, void: &str) -> String {
    match lang {
        Lang::Id => format!(
            "Catatan ini sudah tercatat sebelumnya lalu dibatalkan oleh {void}, jadi tidak berlaku. Isi formulir baru untuk mencatatnya lagi."
        ),
        Lang::En => format!(
            "This record was recorded before and since voided by {void}, so it does not stand. Fill in a new form to record it anew."
        ),
    }
}
