//! Tests of the age STREAM writer and reader: byte compatibility, in-memory pieces, sizes.

mod in_memory_tests {
    use super::super::*;

    #[test]
    fn seal_and_open_match_the_streaming_format() {
        let id = age::x25519::Identity::generate();
        for len in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&id.to_public(), &data).expect("seal");
            assert_eq!(plaintext_len(sealed.len() as u64), Some(len as u64));
            // The streaming decryptor opens what `seal` made, and `open` what `encrypt` made.
            let mut streamed = Vec::new();
            decrypt(&[&id], &sealed[..], 2, |p| {
                streamed.extend_from_slice(p);
                Ok(())
            })
            .expect("decrypt");
            assert_eq!(streamed, data);
            let mut made = Vec::new();
            encrypt(&id.to_public(), &data[..], 2, |p| {
                made.extend_from_slice(&p);
                Ok(())
            })
            .expect("encrypt");
            assert_eq!(open(&[&id], &made).expect("open"), data);
            // Truncated, extended or altered: refused.
            assert!(open(&[&id], &sealed[..sealed.len() - 1]).is_err());
            let mut longer = sealed.clone();
            longer.push(0);
            assert!(open(&[&id], &longer).is_err());
            let mut flipped = sealed.clone();
            *flipped.last_mut().expect("a tag") ^= 1;
            assert!(open(&[&id], &flipped).is_err());
        }
        let other = age::x25519::Identity::generate();
        let sealed = seal(&id.to_public(), b"x").expect("seal");
        assert!(matches!(
            open(&[&other], &sealed),
            Err(DecryptFailure::Header(age::DecryptError::NoMatchingKeys))
        ));
    }
}

mod plaintext_len_tests {
    use super::super::*;

    #[test]
    fn stored_sizes_give_back_the_plaintext_size() {
        let recipient = age::x25519::Identity::generate().to_public();
        for len in [
            0usize,
            1,
            3,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK,
            3 * CHUNK + 7,
        ] {
            let data = vec![9u8; len];
            let mut stored = 0u64;
            encrypt(&recipient, &data[..], 2, |piece| {
                stored += piece.len() as u64;
                Ok(())
            })
            .expect("encrypt");
            assert_eq!(plaintext_len(stored), Some(len as u64), "{len} bytes");
        }
        assert_eq!(plaintext_len(10), None);
    }
}

mod streaming {
    use super::super::*;

    fn seal(id: &age::x25519::Identity, plain: &[u8], workers: usize) -> Vec<u8> {
        let mut sealed = Vec::new();
        let n = encrypt(&id.to_public(), plain, workers, |piece| {
            sealed.extend_from_slice(&piece);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, plain.len() as u64);
        sealed
    }

    fn open(id: &age::x25519::Identity, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let dec = age::Decryptor::new(sealed).unwrap();
        let mut r = dec
            .decrypt(std::iter::once(id as &dyn age::Identity))
            .unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back)?;
        Ok(back)
    }

    /// Lengths around every chunk and batch boundary.
    const SIZES: [usize; 13] = [
        0,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        BATCH * CHUNK - 1,
        BATCH * CHUNK,
        BATCH * CHUNK + 1,
        17 * CHUNK + 5,
        2 * BATCH * CHUNK,
        40 * CHUNK,
        40 * CHUNK + 7,
    ];

    #[test]
    fn the_age_crate_decrypts_every_size() {
        let id = age::x25519::Identity::generate();
        for len in SIZES {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            for workers in [1, 2, 3] {
                let sealed = seal(&id, &plain, workers);
                // Exactly the size the format gives: one tag per started chunk.
                let chunks = len.div_ceil(CHUNK).max(1);
                let header = sealed.len() - len - chunks * TAG;
                assert!(header > 100 && header < 400, "length {len}");
                assert_eq!(open(&id, &sealed).unwrap(), plain, "length {len}");
            }
        }
    }

    #[test]
    fn reads_of_any_shape_give_the_same_plaintext() {
        // A reader that returns a few bytes at a time.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let id = age::x25519::Identity::generate();
        let plain: Vec<u8> = (0..BATCH * CHUNK + 3).map(|i| (i % 251) as u8).collect();
        let mut sealed = Vec::new();
        encrypt(&id.to_public(), Dribble(&plain), 2, |p| {
            sealed.extend_from_slice(&p);
            Ok(())
        })
        .unwrap();
        assert_eq!(open(&id, &sealed).unwrap(), plain);
    }

    #[test]
    fn an_output_error_stops_the_encryption() {
        let id = age::x25519::Identity::generate();
        let plain = vec![1u8; 10 * BATCH * CHUNK];
        let mut calls = 0;
        let err = encrypt(&id.to_public(), &plain[..], 2, |_| {
            calls += 1;
            if calls == 3 {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "gone");
    }

    /// Our decryptor on `sealed`, with its plaintext.
    fn ours(
        id: &age::x25519::Identity,
        sealed: &[u8],
        workers: usize,
    ) -> Result<Vec<u8>, DecryptFailure> {
        let mut plain = Vec::new();
        let n = decrypt(&[id as &dyn age::Identity], sealed, workers, |p| {
            plain.extend_from_slice(p);
            Ok(())
        })?;
        assert_eq!(n, plain.len() as u64);
        Ok(plain)
    }

    /// The age crate's own encryption of `plain`.
    fn theirs(id: &age::x25519::Identity, plain: &[u8]) -> Vec<u8> {
        let r = id.to_public();
        let e =
            age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
        let mut out = Vec::new();
        let mut w = e.wrap_output(&mut out).unwrap();
        io::Write::write_all(&mut w, plain).unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn decrypts_every_size_from_both_encryptors() {
        let id = age::x25519::Identity::generate();
        for len in SIZES {
            let plain: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8).collect();
            for workers in [1, 2, 3] {
                assert_eq!(
                    ours(&id, &seal(&id, &plain, 2), workers).unwrap(),
                    plain,
                    "{len}"
                );
                assert_eq!(
                    ours(&id, &theirs(&id, &plain), workers).unwrap(),
                    plain,
                    "{len}"
                );
            }
        }
    }

    #[test]
    fn decryption_refuses_every_truncation_extension_and_flip() {
        let id = age::x25519::Identity::generate();
        let plain: Vec<u8> = (0..2 * BATCH * CHUNK + 100)
            .map(|i| (i % 253) as u8)
            .collect();
        let sealed = seal(&id, &plain, 2);
        let header = sealed.len() - plain.len() - (plain.len().div_ceil(CHUNK)) * TAG;
        // Cut at every chunk boundary and inside chunks, down to the bare header + nonce.
        let mut cuts: Vec<usize> = (0..=plain.len().div_ceil(CHUNK))
            .map(|i| header + i * STRIDE)
            .filter(|&c| c < sealed.len())
            .collect();
        cuts.extend([
            header + 1,
            header + TAG - 1,
            header + STRIDE + 5,
            sealed.len() - 1,
        ]);
        for cut in cuts {
            match ours(&id, &sealed[..cut], 2) {
                Err(DecryptFailure::Payload(e)) => assert!(
                    matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
                    ),
                    "cut {cut}: {e}"
                ),
                other => panic!(
                    "cut at {cut} of {}: {:?}",
                    sealed.len(),
                    other.map(|p| p.len())
                ),
            }
        }
        // Bytes after the last chunk, or a whole extra chunk.
        for extra in [1usize, TAG, STRIDE] {
            let mut longer = sealed.clone();
            longer.extend(std::iter::repeat_n(7u8, extra));
            assert!(
                matches!(ours(&id, &longer, 2), Err(DecryptFailure::Payload(_))),
                "+{extra}"
            );
        }
        // One flipped bit anywhere in the payload, or in the header's MAC or stanza.
        for at in [header, header + 100, header + STRIDE, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(
                matches!(ours(&id, &bad, 2), Err(DecryptFailure::Payload(_))),
                "flip {at}"
            );
        }
        for at in [header - 20, 40] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(
                matches!(ours(&id, &bad, 2), Err(DecryptFailure::Header(_))),
                "flip {at}"
            );
        }
        // Another identity does not open it.
        let other = age::x25519::Identity::generate();
        assert!(matches!(
            ours(&other, &sealed, 2),
            Err(DecryptFailure::Header(age::DecryptError::NoMatchingKeys))
        ));
    }

    #[test]
    fn an_empty_last_chunk_after_data_is_refused() {
        // age allows an empty chunk only as the whole payload of an empty file.
        let id = age::x25519::Identity::generate();
        let (mut file, key) = start(&id.to_public()).unwrap();
        let batch = Batch {
            buf: vec![5u8; 2 * STRIDE],
            counter: 0,
            chunks: 2,
            last_len: 0,
            is_final: true,
        };
        file.extend_from_slice(&batch.seal(&key).unwrap());
        match ours(&id, &file, 2) {
            Err(DecryptFailure::Payload(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
            other => panic!("{:?}", other.map(|p| p.len())),
        }
    }

    #[test]
    fn tampering_is_detected() {
        let id = age::x25519::Identity::generate();
        let mut sealed = seal(&id, &vec![9u8; 3 * CHUNK], 2);
        let n = sealed.len();
        sealed[n - 100] ^= 1;
        assert!(open(&id, &sealed).is_err());
    }
}
