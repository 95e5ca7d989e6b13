//! Text encodings of merchants' files: UTF-8 (with or without BOM) or GB18030/GBK, as
//! Taobao's older exports write. Detected from the first mebibyte, then decoded as a stream.

use std::io::{self, Read};

use encoding_rs::{Decoder, DecoderResult, GB18030};

/// How much of a file is looked at to tell its encoding.
const SNIFF_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Gb18030,
}

impl TextEncoding {
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Gb18030 => "GB18030",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the text is neither UTF-8 nor GB18030 (bad bytes at byte offset {offset})")]
pub struct EncodingError {
    pub line: u64,
    pub offset: usize,
}

/// A file's text as UTF-8, whatever it was written in.
pub struct Utf8Text {
    pub encoding: TextEncoding,
    pub reader: Box<dyn Read + Send>,
}

/// Sniffs the encoding and returns a reader of UTF-8 text with any BOM removed.
pub fn utf8_reader<R: Read + Send + 'static>(
    mut inner: R,
) -> io::Result<Result<Utf8Text, EncodingError>> {
    let mut head = Vec::with_capacity(64 * 1024);
    (&mut inner)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    let at_end = head.len() < SNIFF_BYTES;
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    let utf8_ok = match std::str::from_utf8(body) {
        Ok(_) => true,
        // Cut mid-character by the sniff window: fine unless the file ended there.
        Err(e) => e.error_len().is_none() && !at_end,
    };
    if utf8_ok {
        let skip = head.len() - body.len();
        let mut replay = io::Cursor::new(head);
        replay.set_position(skip as u64);
        return Ok(Ok(Utf8Text {
            encoding: TextEncoding::Utf8,
            reader: Box::new(replay.chain(inner)),
        }));
    }
    let mut decoder = GB18030.new_decoder_without_bom_handling();
    let mut scratch = vec![0u8; head.len() * 3 / 2 + 16];
    let (result, read, _) = decoder.decode_to_utf8_without_replacement(&head, &mut scratch, at_end);
    if let DecoderResult::Malformed(bad, _) = result {
        let offset = read - usize::from(bad);
        let line = 1 + head[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
        return Ok(Err(EncodingError { line, offset }));
    }
    let decoding = DecodingReader {
        inner: io::Cursor::new(head).chain(inner),
        decoder: GB18030.new_decoder_without_bom_handling(),
        raw: vec![0; 64 * 1024],
        raw_start: 0,
        raw_end: 0,
        out: vec![0; 0],
        out_start: 0,
        eof: false,
        consumed: 0,
    };
    Ok(Ok(Utf8Text {
        encoding: TextEncoding::Gb18030,
        reader: Box::new(decoding),
    }))
}

/// Decodes GB18030 to UTF-8 as it reads; malformed input is an error, never a replacement.
struct DecodingReader<R> {
    inner: R,
    decoder: Decoder,
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    out: Vec<u8>,
    out_start: usize,
    eof: bool,
    consumed: usize,
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out.len() {
                let n = buf.len().min(self.out.len() - self.out_start);
                buf[..n].copy_from_slice(&self.out[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.eof && self.raw_start == self.raw_end {
                return Ok(0);
            }
            if self.raw_start == self.raw_end && !self.eof {
                let n = self.inner.read(&mut self.raw)?;
                self.raw_start = 0;
                self.raw_end = n;
                self.eof = n == 0;
            }
            let input = &self.raw[self.raw_start..self.raw_end];
            self.out.resize(input.len() * 3 + 16, 0);
            let (result, read, written) =
                self.decoder
                    .decode_to_utf8_without_replacement(input, &mut self.out, self.eof);
            if let DecoderResult::Malformed(..) = result {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the text is not valid GB18030 near byte {}",
                        self.consumed + read
                    ),
                ));
            }
            self.raw_start += read;
            self.consumed += read;
            self.out.truncate(written);
            self.out_start = 0;
            if self.eof && written == 0 && self.raw_start == self.raw_end {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<(TextEncoding, String), EncodingError> {
        let mut text = utf8_reader(io::Cursor::new(bytes.to_vec())).expect("io")?;
        let mut s = String::new();
        text.reader.read_to_string(&mut s).expect("decodes");
        Ok((text.encoding, s))
    }

    #[test]
    fn utf8_with_a_bom_loses_the_bom() {
        let (enc, text) = decode("\u{feff}customer_id\n顾客1\n".as_bytes()).expect("ok");
        assert_eq!(enc, TextEncoding::Utf8);
        assert_eq!(text, "customer_id\n顾客1\n");
    }

    #[test]
    fn gbk_text_is_detected_and_decoded() {
        let (bytes, _, _) = GB18030.encode("customer_id,name\nc1,张三\n");
        let (enc, text) = decode(&bytes).expect("ok");
        assert_eq!(enc, TextEncoding::Gb18030);
        assert_eq!(text, "customer_id,name\nc1,张三\n");
    }

    #[test]
    fn bytes_that_are_neither_utf8_nor_gb18030_are_refused_with_the_line() {
        let err = decode(b"customer_id\nc1\n\xff\xff\xff\n").expect_err("refused");
        assert_eq!(err.line, 3);
    }
}
