//! A pickle read as plain data: opcodes are interpreted into values, and a call or a class
//! instance is kept as its pieces (the global named, its arguments, the state `BUILD` gave
//! it), never made. Nothing named in the file is imported or run; what a reader needs is
//! decoded from those pieces afterwards, by class name, against an allow-list of its own.

use std::cell::RefCell;
use std::rc::Rc;

/// A shared, mutable value: pickles fill lists, dicts and objects after memoising them, so
/// every reference must see the filling.
pub(crate) type Shared<T> = Rc<RefCell<T>>;

/// A value of a pickle. Strings, bytes and tuples are shared too, so that `DUP` and memo
/// fetches copy a pointer, never the data: a hostile file cannot multiply its size.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer past 64 bits (a random generator's state), whose value nothing reads.
    BigInt,
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<[Value]>),
    List(Shared<Vec<Value>>),
    Dict(Shared<Vec<(Value, Value)>>),
    /// A global named by module and name (`numpy.dtype`), never imported.
    Global(Rc<str>),
    /// A call of a global (`REDUCE`, `NEWOBJ`) and the state `BUILD` gave its result.
    Object(Shared<Object>),
}

/// The pieces of a call: what was called, with what, and the state it was then given.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// The callee's `module.name` (or `<call>` when the callee was not a global).
    pub class: String,
    /// The call's arguments.
    pub args: Rc<[Value]>,
    /// The state given by `BUILD`, if any.
    pub state: Option<Value>,
}

impl Value {
    /// The value of `key` in a dict with string keys.
    pub fn get(&self, key: &str) -> Option<Value> {
        let Value::Dict(items) = self else {
            return None;
        };
        items
            .borrow()
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if &**s == key))
            .map(|(_, v)| v.clone())
    }

    /// What the value is, in words, for errors.
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) | Value::BigInt => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a string".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Global(name) => format!("the global {name}"),
            Value::Object(object) => format!("a {} object", object.borrow().class),
        }
    }
}

/// The most values the memo may hold.
const MAX_MEMO: usize = 1 << 20;

/// The most opcodes read: each makes at most one value, so this bounds the values a file
/// can make, whatever its size (SB3's pickles have a few hundred).
const MAX_OPCODES: usize = 1 << 20;

/// Reads a pickle (protocols 2 to 5, the binary opcodes) into its value; the error names
/// the opcode or what is malformed and where.
pub(crate) fn read(bytes: &[u8]) -> Result<Value, String> {
    let mut machine = Machine {
        bytes,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
    };
    machine.run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Vec<Option<Value>>,
}

fn shared<T>(value: T) -> Shared<T> {
    Rc::new(RefCell::new(value))
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let mut value = [0u8; 8];
        value[..n].copy_from_slice(self.take(n)?);
        Ok(u64::from_le_bytes(value))
    }

    /// A length-prefixed run of bytes (`n` bytes of little-endian length).
    fn sized(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let len = usize::try_from(self.uint(n)?).map_err(|_| "a length past memory")?;
        Ok(self.take(len)?.to_vec())
    }

    fn text(&mut self, n: usize) -> Result<String, String> {
        String::from_utf8(self.sized(n)?)
            .map_err(|_| format!("invalid UTF-8 before byte {}", self.at))
    }

    fn pop(&mut self) -> Result<Value, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(format!("a value popped past a mark at byte {}", self.at));
        }
        self.stack
            .pop()
            .ok_or_else(|| format!("stack underflow at byte {}", self.at))
    }

    fn top(&self) -> Result<&Value, String> {
        self.stack
            .last()
            .ok_or_else(|| format!("empty stack at byte {}", self.at))
    }

    /// The values pushed since the last mark, the mark removed.
    fn since_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| format!("no mark at byte {}", self.at))?;
        Ok(self.stack.split_off(mark))
    }

    fn memoise(&mut self, index: usize) -> Result<(), String> {
        if index >= MAX_MEMO {
            return Err(format!("memo index {index} past {MAX_MEMO}"));
        }
        let value = self.top()?.clone();
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(value);
        Ok(())
    }

    fn recall(&mut self, index: usize) -> Result<(), String> {
        let value = self
            .memo
            .get(index)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("memo index {index} unset at byte {}", self.at))?;
        self.stack.push(value);
        Ok(())
    }

    fn call(&mut self, callee: Value, args: Value) -> Result<(), String> {
        let Value::Tuple(args) = args else {
            return Err(format!(
                "call arguments are not a tuple at byte {}",
                self.at
            ));
        };
        let class = match callee {
            Value::Global(name) => name.to_string(),
            _ => "<call>".into(),
        };
        self.stack.push(Value::Object(shared(Object {
            class,
            args,
            state: None,
        })));
        Ok(())
    }

    fn extend_dict(&mut self, pairs: Vec<Value>) -> Result<(), String> {
        if !pairs.len().is_multiple_of(2) {
            return Err(format!("an odd number of dict items at byte {}", self.at));
        }
        let Value::Dict(items) = self.top()?.clone() else {
            return Err(format!("items set on a non-dict at byte {}", self.at));
        };
        let mut pairs = pairs.into_iter();
        while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
            items.borrow_mut().push((k, v));
        }
        Ok(())
    }

    fn extend_list(&mut self, values: Vec<Value>) -> Result<(), String> {
        match self.top()?.clone() {
            Value::List(items) => items.borrow_mut().extend(values),
            // Sets are kept as lists: nothing here reads them.
            _ => return Err(format!("items appended to a non-list at byte {}", self.at)),
        }
        Ok(())
    }

    /// Long because it is the opcode table, one arm an opcode.
    fn run(&mut self) -> Result<Value, String> {
        for _ in 0..MAX_OPCODES {
            let at = self.at;
            let opcode = self.take(1)?[0];
            match opcode {
                0x80 => {
                    // PROTO
                    let protocol = self.take(1)?[0];
                    if !(2..=5).contains(&protocol) {
                        return Err(format!("pickle protocol {protocol} (2 to 5 are read)"));
                    }
                }
                0x95 => {
                    // FRAME: a length hint
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.since_mark()?;
                }
                b'2' => {
                    let top = self.top()?.clone();
                    self.stack.push(top);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a | 0x8b => {
                    // LONG1, LONG4: little-endian two's complement
                    let n = self.uint(if opcode == 0x8a { 1 } else { 4 })? as usize;
                    if n > 8 {
                        self.take(n)?;
                        self.stack.push(Value::BigInt);
                        continue;
                    }
                    let bytes = self.take(n)?;
                    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
                    let mut value = if negative { [0xffu8; 8] } else { [0u8; 8] };
                    value[..n].copy_from_slice(bytes);
                    self.stack.push(Value::Int(i64::from_le_bytes(value)));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                0x8c => {
                    let s = self.text(1)?;
                    self.stack.push(Value::Str(s.into()));
                }
                b'X' => {
                    let s = self.text(4)?;
                    self.stack.push(Value::Str(s.into()));
                }
                0x8d => {
                    let s = self.text(8)?;
                    self.stack.push(Value::Str(s.into()));
                }
                b'C' => {
                    let b = self.sized(1)?;
                    self.stack.push(Value::Bytes(b.into()));
                }
                b'B' => {
                    let b = self.sized(4)?;
                    self.stack.push(Value::Bytes(b.into()));
                }
                0x8e | 0x96 => {
                    // BINBYTES8, BYTEARRAY8
                    let b = self.sized(8)?;
                    self.stack.push(Value::Bytes(b.into()));
                }
                b')' => self.stack.push(Value::Tuple(Vec::new().into())),
                b't' => {
                    let items = self.since_mark()?;
                    self.stack.push(Value::Tuple(items.into()));
                }
                0x85..=0x87 => {
                    let n = usize::from(opcode - 0x84);
                    if self.stack.len() < n {
                        return Err(format!("stack underflow at byte {at}"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items.into()));
                }
                b']' => self.stack.push(Value::List(shared(Vec::new()))),
                b'l' => {
                    let items = self.since_mark()?;
                    self.stack.push(Value::List(shared(items)));
                }
                b'a' => {
                    let value = self.pop()?;
                    self.extend_list(vec![value])?;
                }
                b'e' => {
                    let values = self.since_mark()?;
                    self.extend_list(values)?;
                }
                0x8f => self.stack.push(Value::List(shared(Vec::new()))), // EMPTY_SET
                0x90 => {
                    // ADDITEMS
                    let values = self.since_mark()?;
                    self.extend_list(values)?;
                }
                0x91 => {
                    // FROZENSET
                    let items = self.since_mark()?;
                    self.stack.push(Value::List(shared(items)));
                }
                b'}' => self.stack.push(Value::Dict(shared(Vec::new()))),
                b'd' => {
                    let pairs = self.since_mark()?;
                    self.stack.push(Value::Dict(shared(Vec::new())));
                    self.extend_dict(pairs)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.extend_dict(vec![key, value])?;
                }
                b'u' => {
                    let pairs = self.since_mark()?;
                    self.extend_dict(pairs)?;
                }
                b'c' => {
                    // GLOBAL: "module\nname\n"
                    let mut line = || -> Result<String, String> {
                        let rest = &self.bytes[self.at..];
                        let end = rest
                            .iter()
                            .position(|&b| b == b'\n')
                            .ok_or_else(|| format!("an unterminated GLOBAL at byte {at}"))?;
                        let text = String::from_utf8(rest[..end].to_vec())
                            .map_err(|_| format!("invalid UTF-8 at byte {at}"))?;
                        self.at += end + 1;
                        Ok(text)
                    };
                    let module = line()?;
                    let name = line()?;
                    self.stack
                        .push(Value::Global(format!("{module}.{name}").into()));
                }
                0x93 => {
                    // STACK_GLOBAL
                    let (Value::Str(name), Value::Str(module)) = (self.pop()?, self.pop()?) else {
                        return Err(format!("STACK_GLOBAL of non-strings at byte {at}"));
                    };
                    self.stack
                        .push(Value::Global(format!("{module}.{name}").into()));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callee = self.pop()?;
                    self.call(callee, args)?;
                }
                0x81 => {
                    // NEWOBJ
                    let args = self.pop()?;
                    let class = self.pop()?;
                    self.call(class, args)?;
                }
                0x92 => {
                    // NEWOBJ_EX: keyword arguments are dropped (nothing read here has any)
                    self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    self.call(class, args)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    match self.top()? {
                        Value::Object(object) => object.borrow_mut().state = Some(state),
                        other => {
                            return Err(format!("BUILD on {} at byte {at}", other.describe()));
                        }
                    }
                }
                0x94 => {
                    // MEMOIZE
                    let index = self.memo.len();
                    self.memoise(index)?;
                }
                b'q' => {
                    let index = self.uint(1)? as usize;
                    self.memoise(index)?;
                }
                b'r' => {
                    let index = self.uint(4)? as usize;
                    self.memoise(index)?;
                }
                b'h' => {
                    let index = self.uint(1)? as usize;
                    self.recall(index)?;
                }
                b'j' => {
                    let index = self.uint(4)? as usize;
                    self.recall(index)?;
                }
                other => {
                    return Err(format!(
                        "opcode {other:#04x} at byte {at} is not read (protocol 2-5 binary opcodes are)"
                    ));
                }
            }
        }
        Err(format!("more than {MAX_OPCODES} opcodes before STOP"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protocol-4 pickle made by CPython, whose second `"x"` is fetched from the memo.
    #[test]
    fn plain_values_read_as_python_wrote_them() {
        // pickle.dumps({"a": [1, 2.5], "b": (True, None), "c": "x", "d": "x"}, protocol=4)
        let bytes = b"\x80\x04\x95.\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01G@\x04\x00\x00\x00\x00\x00\x00e\x8c\x01b\x94\x88N\x86\x94\x8c\x01c\x94\x8c\x01x\x94\x8c\x01d\x94h\x06u.";
        let value = read(bytes).unwrap();
        let Some(Value::List(a)) = value.get("a") else {
            panic!("{value:?}")
        };
        assert!(matches!(a.borrow()[..], [Value::Int(1), Value::Float(f)] if f == 2.5));
        assert!(
            matches!(value.get("b"), Some(Value::Tuple(t)) if matches!(t[..], [Value::Bool(true), Value::None]))
        );
        assert!(matches!(value.get("d"), Some(Value::Str(s)) if &*s == "x"));
    }

    /// A call is kept as pieces, never made; its state is seen through every reference.
    #[test]
    fn calls_are_kept_as_their_pieces() {
        // pickle.dumps(os.system) would name a global; here a REDUCE of `os.system` with
        // ("echo",) and a BUILD: nothing runs, the object records them.
        let bytes = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04echo\x85R\x94}b0h\x00.";
        let value = read(bytes).unwrap();
        let Value::Object(object) = value else {
            panic!("{value:?}")
        };
        let object = object.borrow();
        assert_eq!(object.class, "os.system");
        assert!(matches!(&object.args[..], [Value::Str(s)] if &**s == "echo"));
        assert!(matches!(object.state, Some(Value::Dict(_))));
    }

    #[test]
    fn malformed_pickles_are_errors_naming_where() {
        for (bytes, words) in [
            (&b"\x80\x04K"[..], "truncated"),
            (b"\x80\x01.", "protocol 1"),
            (b"\x80\x04h\x05.", "memo index 5"),
            (b"\x80\x04t.", "no mark"),
            (b"\x80\x04P.", "opcode 0x50"),
            (b"\x80\x04.", "underflow"),
        ] {
            let error = read(bytes).unwrap_err();
            assert!(error.contains(words), "{bytes:?}: {error}");
        }
    }

    /// Copies share their data, and a file that makes values without end is stopped: a
    /// megabyte of bytes duplicated two million times is refused, not multiplied.
    #[test]
    fn duplicates_cost_a_pointer_and_opcodes_are_bounded() {
        let mut bytes = b"\x80\x04\x8e".to_vec();
        bytes.extend((1u64 << 20).to_le_bytes());
        bytes.extend(vec![0u8; 1 << 20]);
        bytes.extend(vec![b'2'; 2 << 20]);
        bytes.push(b'.');
        let error = read(&bytes).unwrap_err();
        assert!(error.contains("opcodes before STOP"), "{error}");
        let shared = read(b"\x80\x04C\x03abc2\x86.").unwrap();
        let Value::Tuple(pair) = shared else {
            panic!("{shared:?}")
        };
        let (Value::Bytes(a), Value::Bytes(b)) = (&pair[0], &pair[1]) else {
            panic!("{pair:?}")
        };
        assert!(Rc::ptr_eq(a, b));
    }
}
