//! The little of protobuf's wire format event files need: varints, fixed 32- and 64-bit
//! values and length-delimited fields, written and read.

/// `tensorflow.DataType.DT_STRING`.
pub(crate) const DT_STRING: u64 = 7;

/// A message being written.
#[derive(Debug, Default)]
pub(crate) struct Encoder(Vec<u8>);

impl Encoder {
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    pub(crate) fn varint_field(&mut self, field: u32, value: u64) {
        self.key(field, 0);
        self.varint(value);
    }

    pub(crate) fn double(&mut self, field: u32, value: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn float(&mut self, field: u32, value: f32) {
        self.key(field, 5);
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, field: u32, value: &[u8]) {
        self.key(field, 2);
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value);
    }

    pub(crate) fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    pub(crate) fn message(&mut self, field: u32, message: Encoder) {
        self.bytes(field, &message.0);
    }
}

/// A field's value as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Payload<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Reads a message's fields in order.
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .data
                .get(self.at)
                .ok_or_else(|| "a varint runs past its message".to_string())?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint longer than ten bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| format!("a field of {n} bytes runs past its message"))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    /// The next field number and value, `None` at the end.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Payload<'a>)>, String> {
        if self.at >= self.data.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| "a field number past 2^32".to_string())?;
        let payload = match key & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => Payload::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("eight bytes"),
            )),
            2 => {
                let length = self.varint()?;
                let length = usize::try_from(length).map_err(|_| "a huge field".to_string())?;
                Payload::Bytes(self.take(length)?)
            }
            5 => Payload::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("four bytes"),
            )),
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok(Some((field, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_as_written() {
        let mut inner = Encoder::default();
        inner.string(1, "tag");
        let mut message = Encoder::default();
        message.varint_field(2, 300);
        message.double(1, 1.5);
        message.float(7, -2.0);
        message.message(5, inner);
        let bytes = message.into_bytes();
        // 300 as a varint is ac 02.
        assert_eq!(&bytes[..3], &[0x10, 0xac, 0x02]);
        let mut decoder = Decoder::new(&bytes);
        assert_eq!(
            decoder.next_field().unwrap(),
            Some((2, Payload::Varint(300)))
        );
        assert_eq!(
            decoder.next_field().unwrap(),
            Some((1, Payload::Fixed64(1.5f64.to_bits())))
        );
        assert_eq!(
            decoder.next_field().unwrap(),
            Some((7, Payload::Fixed32((-2.0f32).to_bits())))
        );
        assert_eq!(
            decoder.next_field().unwrap(),
            Some((5, Payload::Bytes(&[0x0a, 3, b't', b'a', b'g'])))
        );
        assert_eq!(decoder.next_field().unwrap(), None);
        assert!(Decoder::new(&[0x0a, 50, 1]).next_field().is_err());
    }
}
