//! Quality standards as data: the verdict of an inspection is computed from
//! the standard's parameter limits, never taken from the client.

use std::collections::HashSet;

use crate::error::{DomainError, Rule};
use crate::model::{Measurement, QualityStandard, Verdict};

impl QualityStandard {
    /// Checks the standard itself: unique parameter codes, min ≤ max.
    pub fn check(&self) -> Result<(), DomainError> {
        if self.parameters.is_empty() {
            return Err(DomainError::invalid(
                "standard.parameters",
                "a standard needs at least one parameter",
            ));
        }
        let mut seen = HashSet::new();
        for (i, p) in self.parameters.iter().enumerate() {
            if !seen.insert(p.code.as_str()) {
                return Err(DomainError::invalid(
                    format!("standard.parameters[{i}].code"),
                    format!("parameter {:?} is listed twice", p.code),
                ));
            }
            if let (Some(min), Some(max)) = (p.min, p.max) {
                if min > max {
                    return Err(DomainError::invalid(
                        format!("standard.parameters[{i}]"),
                        format!("min {min} is greater than max {max}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The verdict for a set of measurements, with one finding per parameter
    /// outside its limits or missing. Non-conformance outranks hold.
    pub fn evaluate(&self, measurements: &[Measurement]) -> Result<(Verdict, Vec<String>), DomainError> {
        let mut seen = HashSet::new();
        for (i, m) in measurements.iter().enumerate() {
            let Some(p) = self.parameters.iter().find(|p| p.code == m.parameter) else {
                let known: Vec<&str> = self.parameters.iter().map(|p| p.code.as_str()).collect();
                return Err(DomainError::invalid(
                    format!("measurements[{i}].parameter"),
                    format!(
                        "{:?} is not a parameter of standard {:?}; it measures {}",
                        m.parameter,
                        self.id,
                        known.join(", ")
                    ),
                ));
            };
            if !seen.insert(m.parameter.as_str()) {
                return Err(DomainError::invalid(
                    format!("measurements[{i}]"),
                    format!("parameter {:?} is measured twice", m.parameter),
                ));
            }
            if m.unit != p.unit {
                return Err(DomainError::rule(
                    Rule::UnitMismatch,
                    format!(
                        "measurement {:?} is in {:?} but {} specifies it in {:?}; no conversion is defined",
                        m.parameter, m.unit, self.name, p.unit
                    ),
                ));
            }
        }
        let mut non_conformant = Vec::new();
        let mut missing = Vec::new();
        for p in &self.parameters {
            match measurements.iter().find(|m| m.parameter == p.code) {
                Some(m) => {
                    if let Some(min) = p.min.filter(|min| m.value < *min) {
                        non_conformant.push(format!(
                            "{} {} {} is below the minimum {} {}",
                            p.name, m.value, p.unit, min, p.unit
                        ));
                    }
                    if let Some(max) = p.max.filter(|max| m.value > *max) {
                        non_conformant.push(format!(
                            "{} {} {} is above the maximum {} {}",
                            p.name, m.value, p.unit, max, p.unit
                        ));
                    }
                }
                None if p.required => missing.push(format!("{} was not measured", p.name)),
                None => {}
            }
        }
        let verdict = if !non_conformant.is_empty() {
            Verdict::NonConformant
        } else if !missing.is_empty() {
            Verdict::Hold
        } else {
            Verdict::Conformant
        };
        non_conformant.extend(missing);
        Ok((verdict, non_conformant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Parameter;
    use rust_decimal::Decimal;

    fn premium() -> QualityStandard {
        let p = |code: &str, min: Option<i64>, max: Option<(i64, u32)>| Parameter {
            code: code.into(),
            name: code.into(),
            unit: "%".into(),
            min: min.map(Decimal::from),
            max: max.map(|(m, s)| Decimal::new(m, s)),
            required: true,
        };
        QualityStandard {
            id: "sni-6128-premium".into(),
            name: "SNI 6128:2020 Premium".into(),
            reference: "SNI 6128:2020".into(),
            parameters: vec![
                p("moisture", None, Some((14, 0))),
                p("broken", None, Some((1450, 2))),
                p("head_rice", Some(85), None),
            ],
        }
    }

    fn m(code: &str, v: &str) -> Measurement {
        Measurement {
            parameter: code.into(),
            value: v.parse().unwrap(),
            unit: "%".into(),
        }
    }

    #[test]
    fn verdicts() {
        let s = premium();
        let ok = [m("moisture", "13.8"), m("broken", "14.50"), m("head_rice", "86")];
        assert_eq!(s.evaluate(&ok).unwrap().0, Verdict::Conformant);
        let wet = [m("moisture", "14.2"), m("broken", "10"), m("head_rice", "86")];
        let (v, findings) = s.evaluate(&wet).unwrap();
        assert_eq!(v, Verdict::NonConformant);
        assert!(findings[0].contains("above the maximum 14"), "{findings:?}");
        let partial = [m("moisture", "13"), m("broken", "10")];
        assert_eq!(s.evaluate(&partial).unwrap().0, Verdict::Hold);
        let both = [m("moisture", "15"), m("broken", "10")];
        assert_eq!(s.evaluate(&both).unwrap().0, Verdict::NonConformant);
    }

    #[test]
    fn refuses_unknown_parameters_and_units() {
        let s = premium();
        let unknown = s.evaluate(&[m("moisture", "14"), m("colour", "1")]).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            format!(
                "measurements[1].parameter: \"colour\" is not a parameter of standard {:?}; it measures moisture, broken, head_rice",
                s.id
            )
        );
        let wrong_unit = Measurement {
            parameter: "moisture".into(),
            value: Decimal::ONE,
            unit: "g/kg".into(),
        };
        assert_eq!(
            s.evaluate(&[wrong_unit]).unwrap_err().broken_rule(),
            Some(Rule::UnitMismatch)
        );
    }
}
