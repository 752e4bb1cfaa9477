//! Spreadsheets of commands, for those who keep their records in one: a
//! CSV file (RFC 4180, a header line naming the columns, in any order) holds
//! one type of command, known by its columns:
//!
//! | type | columns (optional ones in brackets) |
//! |---|---|
//! | receipts | `command_id, facility_id, lot_id, product_id, quantity, unit, owner_id, supplier_id, [origin_place, plot_id, occurred_at]` |
//! | shipments | `command_id, facility_id, lot_id, consignee_id, [quantity, unit, package_serials, document, dds_reference, occurred_at]` |
//! | status changes | `command_id, facility_id, lot_id, status, reason, [occurred_at]` (status: `hold`, `release`, `recall` or `dispose`) |
//! | processing | `command_id, facility_id, process_step, input_lot, input_quantity, input_unit, output_lot, output_product, output_quantity, output_unit, [line, output_owner, occurred_at]`; the rows of one `command_id` make one command, each naming an input and/or an output (a lot with its quantity); later rows repeat `facility_id`, `process_step`, `line` and `occurred_at` or leave them empty, and an output named twice is named the same way |
//!
//! Units are `kg`, `g`, `t`, `pcs`, `m`, `m2`, `m3` or `l`; times RFC 3339
//! with an offset. Every problem names the line (the header is line 1) and
//! the column.

use std::collections::HashMap;

use crate::v1 as p;

/// The type of command a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sheet {
    Receipts,
    Shipments,
    StatusChanges,
    Processing,
}

impl Sheet {
    pub fn name(self) -> &'static str {
        match self {
            Sheet::Receipts => "receipts",
            Sheet::Shipments => "shipments",
            Sheet::StatusChanges => "status changes",
            Sheet::Processing => "processing",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Sheet::Receipts => &[
                "command_id",
                "facility_id",
                "lot_id",
                "product_id",
                "quantity",
                "unit",
                "owner_id",
                "supplier_id",
            ],
            Sheet::Shipments => &["command_id", "facility_id", "lot_id", "consignee_id"],
            Sheet::StatusChanges => &["command_id", "facility_id", "lot_id", "status", "reason"],
            Sheet::Processing => &[
                "command_id",
                "facility_id",
                "process_step",
                "input_lot",
                "input_quantity",
                "input_unit",
                "output_lot",
                "output_product",
                "output_quantity",
                "output_unit",
            ],
        }
    }

    fn optional(self) -> &'static [&'static str] {
        match self {
            Sheet::Receipts => &["origin_place", "plot_id", "occurred_at"],
            Sheet::Shipments => &[
                "quantity",
                "unit",
                "package_serials",
                "document",
                "dds_reference",
                "occurred_at",
            ],
            Sheet::StatusChanges => &["occurred_at"],
            Sheet::Processing => &["line", "output_owner", "occurred_at"],
        }
    }

    /// The type whose key column the header has.
    fn of(header: &[String]) -> Option<Sheet> {
        let has = |c: &str| header.iter().any(|h| h == c);
        match (has("input_lot"), has("status"), has("consignee_id"), has("supplier_id")) {
            (true, _, _, _) => Some(Sheet::Processing),
            (_, true, _, _) => Some(Sheet::StatusChanges),
            (_, _, true, _) => Some(Sheet::Shipments),
            (_, _, _, true) => Some(Sheet::Receipts),
            _ => None,
        }
    }
}

/// A command of a file and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: usize,
    pub kind: p::command::Kind,
}

/// What is wrong with a file: each problem with its line.
pub type Problems = Vec<(usize, String)>;

fn unit(line: usize, column: &str, text: &str) -> Result<p::Unit, (usize, String)> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "kg" => p::Unit::Kg,
        "g" => p::Unit::G,
        "t" => p::Unit::T,
        "pcs" => p::Unit::Pcs,
        "m" => p::Unit::M,
        "m2" | "m²" => p::Unit::M2,
        "m3" | "m³" => p::Unit::M3,
        "l" => p::Unit::L,
        other => {
            return Err((
                line,
                format!("{column}: {other:?} is not a unit (kg, g, t, pcs, m, m2, m3 or l)"),
            ))
        }
    })
}

fn time(line: usize, text: &str) -> Result<Option<prost_types::Timestamp>, (usize, String)> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let t = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).map_err(|e| {
        (
            line,
            format!("occurred_at: {text:?} is not a time with its offset, like 2026-09-02T08:00:00+07:00 ({e})"),
        )
    })?;
    Ok(Some(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }))
}

/// The commands of a CSV file, or every problem found in it.
pub fn parse(text: &str) -> Result<(Sheet, Vec<Row>), Problems> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.to_ascii_lowercase()).collect(),
        Err(e) => return Err(vec![(1, format!("the header line cannot be read: {e}"))]),
    };
    let sheet = Sheet::of(&header).ok_or_else(|| {
        vec![(
            1,
            "the header names no command type: receipts have supplier_id, shipments consignee_id, status changes status, processing input_lot".to_string(),
        )]
    })?;
    let mut problems = Vec::new();
    for c in sheet.required() {
        if !header.iter().any(|h| h == c) {
            problems.push((1, format!("{} need the column {c}", sheet.name())));
        }
    }
    for h in &header {
        if !sheet.required().contains(&h.as_str()) && !sheet.optional().contains(&h.as_str()) {
            problems.push((1, format!("{h}: not a column of {}", sheet.name())));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let column = |name: &str| header.iter().position(|h| h == name);
    let mut rows = Vec::new();
    let mut groups: HashMap<String, usize> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i + 2, |p| p.line() as usize);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push((line, format!("the line cannot be read: {e}")));
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let get = |name: &str| column(name).and_then(|c| record.get(c)).unwrap_or_default().to_string();
        let quantity = |value: &str, unit_column: &str| -> Result<Option<p::Quantity>, (usize, String)> {
            let v = get(value);
            if v.is_empty() {
                return Ok(None);
            }
            Ok(Some(p::Quantity {
                value: v,
                unit: unit(line, unit_column, &get(unit_column))? as i32,
            }))
        };
        let made = (|| -> Result<Option<p::command::Kind>, (usize, String)> {
            let occurred_at = time(line, &get("occurred_at"))?;
            Ok(Some(match sheet {
                Sheet::Receipts => p::command::Kind::ReceiveMaterial(p::ReceiveMaterialRequest {
                    command_id: get("command_id"),
                    facility_id: get("facility_id"),
                    lot_id: get("lot_id"),
                    product_id: get("product_id"),
                    quantity: quantity("quantity", "unit")?,
                    owner_id: get("owner_id"),
                    supplier_id: get("supplier_id"),
                    origin: (!get("origin_place").is_empty() || !get("plot_id").is_empty()).then(|| p::Origin {
                        place: get("origin_place"),
                        plot_id: get("plot_id"),
                        ..Default::default()
                    }),
                    occurred_at,
                    ..Default::default()
                }),
                Sheet::Shipments => p::command::Kind::ShipLot(p::ShipLotRequest {
                    command_id: get("command_id"),
                    facility_id: get("facility_id"),
                    lot_id: get("lot_id"),
                    quantity: quantity("quantity", "unit")?,
                    package_serials: get("package_serials").split_whitespace().map(str::to_string).collect(),
                    consignee_id: get("consignee_id"),
                    document: get("document"),
                    dds_reference: get("dds_reference"),
                    occurred_at,
                }),
                Sheet::StatusChanges => {
                    let status = match get("status").to_ascii_lowercase().as_str() {
                        "hold" => p::LotStatus::OnHold,
                        "release" => p::LotStatus::Released,
                        "recall" => p::LotStatus::Recalled,
                        "dispose" => p::LotStatus::Disposed,
                        other => {
                            return Err((
                                line,
                                format!("status: {other:?} is not hold, release, recall or dispose"),
                            ))
                        }
                    };
                    p::command::Kind::ChangeLotStatus(p::ChangeLotStatusRequest {
                        command_id: get("command_id"),
                        facility_id: get("facility_id"),
                        lot_id: get("lot_id"),
                        status: status as i32,
                        reason: get("reason"),
                        occurred_at,
                    })
                }
                Sheet::Processing => {
                    // A lot and its quantity go together: one without the
                    // other would drop the lot from the transformation.
                    for (lot, quantity) in [("input_lot", "input_quantity"), ("output_lot", "output_quantity")] {
                        match (get(lot).is_empty(), get(quantity).is_empty()) {
                            (false, true) => return Err((line, format!("{lot} {:?} has no {quantity}", get(lot)))),
                            (true, false) => {
                                return Err((line, format!("{quantity} {:?} names no {lot}", get(quantity))))
                            }
                            _ => {}
                        }
                    }
                    let input = quantity("input_quantity", "input_unit")?.map(|q| p::LotInput {
                        lot_id: get("input_lot"),
                        quantity: Some(q),
                    });
                    let output = quantity("output_quantity", "output_unit")?.map(|q| p::LotOutput {
                        lot_id: get("output_lot"),
                        product_id: get("output_product"),
                        quantity: Some(q),
                        owner_id: get("output_owner"),
                    });
                    let id = get("command_id");
                    // Further rows of the same command add to it; what the
                    // whole command shares they repeat or leave empty.
                    if let Some(&at) = groups.get(&id) {
                        if let Some(Row {
                            line: first,
                            kind: p::command::Kind::ProcessLots(cmd),
                        }) = rows.get_mut(at)
                        {
                            let shared = [
                                ("facility_id", cmd.facility_id.clone()),
                                ("process_step", cmd.process_step.clone()),
                                ("line", cmd.line.clone()),
                            ];
                            for (name, was) in shared {
                                let here = get(name);
                                if !here.is_empty() && here != was {
                                    return Err((
                                        line,
                                        format!("{name} {here:?} differs from {was:?} on line {first}, the first row of command {id:?}"),
                                    ));
                                }
                            }
                            if occurred_at.is_some() && occurred_at != cmd.occurred_at {
                                return Err((
                                    line,
                                    format!("occurred_at differs from line {first}, the first row of command {id:?}"),
                                ));
                            }
                            cmd.inputs.extend(input);
                            if let Some(o) = output {
                                match cmd.outputs.iter().find(|x| x.lot_id == o.lot_id) {
                                    None => cmd.outputs.push(o),
                                    Some(x) if *x == o => {}
                                    Some(_) => {
                                        return Err((
                                            line,
                                            format!(
                                                "output_lot {:?} appears again in command {id:?} with another product, quantity or owner",
                                                o.lot_id
                                            ),
                                        ))
                                    }
                                }
                            }
                        }
                        return Ok(None);
                    }
                    groups.insert(id.clone(), rows.len());
                    p::command::Kind::ProcessLots(p::ProcessLotsRequest {
                        command_id: id,
                        facility_id: get("facility_id"),
                        process_step: get("process_step"),
                        line: get("line"),
                        inputs: input.into_iter().collect(),
                        outputs: output.into_iter().collect(),
                        occurred_at,
                    })
                }
            }))
        })();
        match made {
            Ok(Some(kind)) => rows.push(Row { line, kind }),
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
    }
    // Every command's fields, as the server will check them.
    for row in &rows {
        if let Err(e) = crate::command_from_proto(row.kind.clone()) {
            problems.push((row.line, e.to_string()));
        }
    }
    if problems.is_empty() {
        Ok((sheet, rows))
    } else {
        problems.sort();
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sheet_of_receipts_becomes_commands_and_a_bad_cell_is_named_by_line_and_column() {
        let text = "command_id,facility_id,lot_id,product_id,quantity,unit,owner_id,supplier_id,origin_place\n\
                    r1,fac-demak,L1,prd-gkp,1200,kg,ukm-1,sup-1,\"Desa Wonosalam, Demak\"\n\
                    r2,fac-demak,L2,prd-gkp,800.5,kg,ukm-1,sup-1,\n";
        let (sheet, rows) = parse(text).unwrap();
        assert_eq!(sheet, Sheet::Receipts);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 3);
        let p::command::Kind::ReceiveMaterial(r) = &rows[0].kind else {
            panic!()
        };
        assert_eq!(r.origin.as_ref().unwrap().place, "Desa Wonosalam, Demak");
        assert_eq!(r.quantity.as_ref().unwrap().unit, p::Unit::Kg as i32);

        let bad = "command_id,facility_id,lot_id,product_id,quantity,unit,owner_id,supplier_id\n\
                   r1,fac-demak,L1,prd-gkp,1200,kg,ukm-1,sup-1\n\
                   r2,fac-demak,L2,prd-gkp,800,sacks,ukm-1,sup-1\n\
                   r3,fac-demak,L3,prd-gkp,-4,kg,ukm-1,sup-1\n";
        let problems = parse(bad).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, 3);
        assert!(problems[0].1.contains("unit"), "{problems:?}");
        assert_eq!(problems[1].0, 4);
        assert!(problems[1].1.contains("quantity"), "{problems:?}");
    }

    #[test]
    fn processing_rows_of_one_command_make_one_command_and_unknown_columns_are_refused() {
        let text = "command_id,facility_id,process_step,input_lot,input_quantity,input_unit,output_lot,output_product,output_quantity,output_unit\n\
                    m1,fac-demak,giling,L1,1000,kg,B1,prd-beras,1300,kg\n\
                    m1,fac-demak,giling,L2,800,kg,,,,\n";
        let (sheet, rows) = parse(text).unwrap();
        assert_eq!(sheet, Sheet::Processing);
        assert_eq!(rows.len(), 1);
        let p::command::Kind::ProcessLots(m) = &rows[0].kind else {
            panic!()
        };
        assert_eq!(m.inputs.len(), 2);
        assert_eq!(m.outputs.len(), 1);
        let problems = parse("command_id,facility_id,lot_id,status,reason,colour\nx,f,l,hold,r,red\n").unwrap_err();
        assert!(problems[0].1.contains("colour"), "{problems:?}");
        assert!(parse("a,b\n1,2\n").unwrap_err()[0].1.contains("no command type"));
    }

    #[test]
    fn processing_rows_that_would_drop_or_merge_part_of_a_command_are_refused() {
        let header = "command_id,facility_id,process_step,input_lot,input_quantity,input_unit,output_lot,output_product,output_quantity,output_unit\n";
        let first = "m1,fac-demak,giling,L1,1000,kg,B1,prd-beras,1300,kg\n";
        let problem = |rows: &str| {
            let problems = parse(&format!("{header}{first}{rows}")).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            problems[0].clone()
        };
        // A lot without its quantity, or a quantity without its lot.
        let (line, why) = problem("m1,fac-demak,giling,L2,,kg,,,,\n");
        assert_eq!(line, 3);
        assert!(why.contains("input_lot \"L2\" has no input_quantity"), "{why}");
        let (_, why) = problem("m1,,,,,,B2,prd-beras,,kg\n");
        assert!(why.contains("output_lot \"B2\" has no output_quantity"), "{why}");
        let (_, why) = problem("m1,,,,800,kg,,,,\n");
        assert!(why.contains("input_quantity \"800\" names no input_lot"), "{why}");
        // What the command shares, said otherwise on a later row.
        let (_, why) = problem("m1,fac-kudus,giling,L2,800,kg,,,,\n");
        assert!(
            why.contains("facility_id \"fac-kudus\" differs") && why.contains("line 2"),
            "{why}"
        );
        let (_, why) = problem("m1,fac-demak,sosoh,L2,800,kg,,,,\n");
        assert!(why.contains("process_step"), "{why}");
        // An output named twice with other values.
        let (_, why) = problem("m1,,,,,,B1,prd-beras,1200,kg\n");
        assert!(why.contains("output_lot \"B1\" appears again"), "{why}");

        // Repeating what is shared, or leaving it empty, is fine; so is the
        // same output twice.
        let (_, rows) = parse(&format!(
            "{header}{first}m1,,,L2,800,kg,B1,prd-beras,1300,kg\nm1,fac-demak,giling,L3,5,kg,,,,\n"
        ))
        .unwrap();
        let p::command::Kind::ProcessLots(m) = &rows[0].kind else {
            panic!("{rows:?}")
        };
        let inputs: Vec<&str> = m.inputs.iter().map(|i| i.lot_id.as_str()).collect();
        assert_eq!(inputs, ["L1", "L2", "L3"]);
        assert_eq!(m.outputs.len(), 1);
    }
}
