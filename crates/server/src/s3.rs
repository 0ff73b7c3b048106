//! The S3-compatible upload endpoint (path style, bucket `tessera_uploads`), built on
//! `s3s`, which parses requests, verifies SigV4 and decodes aws-chunked bodies. Each
//! asset's credentials may write only under `sources/{id}/`, only while it awaits files,
//! and only with its session token.

use crate::store::{Status, UploadSession};
use crate::util::{random_string, safe_relative, unix_now, ALNUM};
use crate::{AppState, BUCKET};
use axum::body::Body;
use axum::http::{Request, Response};
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

struct Uploads {
    state: Arc<AppState>,
}

struct Keys {
    state: Arc<AppState>,
}

/// The bucket name has an underscore on purpose (it makes every SDK use path-style
/// addressing), which AWS's own naming rules refuse; only that one name is accepted.
struct OurBucket;

impl s3s::validation::NameValidation for OurBucket {
    fn validate_bucket_name(&self, name: &str) -> bool {
        name == BUCKET
    }
}

#[async_trait::async_trait]
impl S3Auth for Keys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.state.store.session(access_key) {
            Ok(Some(s)) => Ok(SecretKey::from(s.secret)),
            _ => Err(s3_error!(InvalidAccessKeyId)),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Uploads {
    /// The session behind a request, checked: known key, right session token, open,
    /// not expired, asset still awaiting files.
    fn session<T>(&self, req: &S3Request<T>) -> S3Result<UploadSession> {
        let Some(c) = &req.credentials else {
            return Err(s3_error!(
                AccessDenied,
                "anonymous requests are not accepted"
            ));
        };
        let s = match self.state.store.session(&c.access_key) {
            Ok(Some(s)) => s,
            _ => return Err(s3_error!(InvalidAccessKeyId)),
        };
        let token = req
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        if token != Some(s.session_token.as_str()) {
            return Err(s3_error!(
                InvalidToken,
                "the session token does not belong to these credentials"
            ));
        }
        if s.expires_unix < unix_now() {
            return Err(s3_error!(ExpiredToken));
        }
        if s.closed {
            return Err(s3_error!(
                AccessDenied,
                "the upload session is closed (uploadComplete was called)"
            ));
        }
        match self.state.store.asset(s.asset_id) {
            Ok(Some(a)) if a.status == Status::AwaitingFiles => Ok(s),
            _ => Err(s3_error!(
                AccessDenied,
                "the asset no longer accepts uploads"
            )),
        }
    }

    /// The file a key maps to, inside the session's prefix.
    fn object_path(&self, s: &UploadSession, bucket: &str, key: &str) -> S3Result<PathBuf> {
        if bucket != BUCKET {
            return Err(s3_error!(NoSuchBucket));
        }
        let prefix = format!("sources/{}/", s.asset_id);
        let Some(rest) = key.strip_prefix(&prefix) else {
            return Err(s3_error!(AccessDenied, "keys must start with {prefix}"));
        };
        let rest = safe_relative(rest)
            .ok_or_else(|| s3_error!(InvalidArgument, "key {key} is not a plain relative path"))?;
        Ok(self.state.layout.sources(s.asset_id).join(rest))
    }

    fn multipart_dir(&self, upload_id: &str) -> S3Result<PathBuf> {
        if upload_id.is_empty() || !upload_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(s3_error!(NoSuchUpload));
        }
        Ok(self.state.config.data_dir.join("multipart").join(upload_id))
    }
}

/// Stream a body into `dest` (through a temporary file), returning its MD5 and length.
async fn store_body(
    body: Option<StreamingBlob>,
    dest: &std::path::Path,
    max: u64,
) -> S3Result<([u8; 16], u64)> {
    let parent = dest.parent().ok_or_else(|| s3_error!(InvalidArgument))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| s3_error!(InternalError, "{e}"))?;
    let tmp = parent.join(format!(".upload-{}", random_string(12, ALNUM)));
    let mut f = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| s3_error!(InternalError, "{e}"))?;
    let mut md5 = Md5::new();
    let mut n = 0u64;
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(s3_error!(IncompleteBody, "{e}"));
                }
            };
            n += chunk.len() as u64;
            if n > max {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(s3_error!(EntityTooLarge));
            }
            md5.update(&chunk);
            if let Err(e) = f.write_all(&chunk).await {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(s3_error!(InternalError, "{e}"));
            }
        }
    }
    f.flush()
        .await
        .map_err(|e| s3_error!(InternalError, "{e}"))?;
    drop(f);
    tokio::fs::rename(&tmp, dest)
        .await
        .map_err(|e| s3_error!(InternalError, "{e}"))?;
    Ok((md5.finalize().into(), n))
}

fn check_md5(given: &Option<String>, got: &[u8; 16]) -> S3Result<()> {
    use base64::Engine;
    if let Some(g) = given {
        let want = base64::engine::general_purpose::STANDARD.encode(got);
        if g.trim() != want {
            return Err(s3_error!(BadDigest, "Content-MD5 does not match the body"));
        }
    }
    Ok(())
}

fn strong(tag: &ETag) -> String {
    tag.value().trim_matches('"').to_string()
}

#[async_trait::async_trait]
impl S3 for Uploads {
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let s = self.session(&req)?;
        let dest = self.object_path(&s, &req.input.bucket, &req.input.key)?;
        let (md5, _) =
            store_body(req.input.body, &dest, self.state.config.max_upload_bytes).await?;
        if let Err(e) = check_md5(&req.input.content_md5, &md5) {
            let _ = tokio::fs::remove_file(&dest).await;
            return Err(e);
        }
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(hex(&md5))),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let s = self.session(&req)?;
        self.object_path(&s, &req.input.bucket, &req.input.key)?;
        let id = random_string(32, ALNUM);
        let dir = self.multipart_dir(&id)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        tokio::fs::write(
            dir.join("key"),
            format!("{}\n{}", s.access_key, req.input.key),
        )
        .await
        .map_err(|e| s3_error!(InternalError, "{e}"))?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(req.input.bucket),
            key: Some(req.input.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let s = self.session(&req)?;
        self.object_path(&s, &req.input.bucket, &req.input.key)?;
        let dir = self.multipart_dir(&req.input.upload_id)?;
        check_owner(&dir, &s, &req.input.key).await?;
        let n = req.input.part_number;
        if !(1..=10_000).contains(&n) {
            return Err(s3_error!(
                InvalidArgument,
                "part numbers go from 1 to 10000"
            ));
        }
        let dest = dir.join(format!("part-{n:05}"));
        let (md5, _) =
            store_body(req.input.body, &dest, self.state.config.max_upload_bytes).await?;
        check_md5(&req.input.content_md5, &md5)?;
        tokio::fs::write(dir.join(format!("part-{n:05}.md5")), hex(&md5))
            .await
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(hex(&md5))),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let s = self.session(&req)?;
        let dest = self.object_path(&s, &req.input.bucket, &req.input.key)?;
        let dir = self.multipart_dir(&req.input.upload_id)?;
        check_owner(&dir, &s, &req.input.key).await?;
        let parts = req
            .input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        if parts.is_empty() {
            return Err(s3_error!(InvalidPart, "no parts listed"));
        }
        let mut last = 0;
        let mut md5s = Vec::new();
        for p in &parts {
            let n = p.part_number.unwrap_or(0);
            if n <= last {
                return Err(s3_error!(InvalidPartOrder));
            }
            last = n;
            let stored = tokio::fs::read_to_string(dir.join(format!("part-{n:05}.md5")))
                .await
                .map_err(|_| s3_error!(InvalidPart, "part {n} was not uploaded"))?;
            if let Some(tag) = &p.e_tag {
                if strong(tag) != stored.trim() {
                    return Err(s3_error!(InvalidPart, "part {n}'s ETag does not match"));
                }
            }
            md5s.push((n, stored.trim().to_string()));
        }
        // Concatenate into the destination through a temporary file.
        let parent = dest.parent().ok_or_else(|| s3_error!(InvalidArgument))?;
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        let tmp = parent.join(format!(".upload-{}", random_string(12, ALNUM)));
        let mut out = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        let mut all = Md5::new();
        for (n, m) in &md5s {
            let mut part = tokio::fs::File::open(dir.join(format!("part-{n:05}")))
                .await
                .map_err(|_| s3_error!(InvalidPart))?;
            tokio::io::copy(&mut part, &mut out)
                .await
                .map_err(|e| s3_error!(InternalError, "{e}"))?;
            let raw: Vec<u8> = (0..m.len() / 2)
                .filter_map(|i| u8::from_str_radix(&m[2 * i..2 * i + 2], 16).ok())
                .collect();
            all.update(&raw);
        }
        out.flush()
            .await
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        drop(out);
        tokio::fs::rename(&tmp, &dest)
            .await
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        let etag = format!("{}-{}", hex(&all.finalize()), md5s.len());
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(req.input.bucket.clone()),
            key: Some(req.input.key.clone()),
            e_tag: Some(ETag::Strong(etag)),
            location: Some(format!("/{}/{}", req.input.bucket, req.input.key)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let s = self.session(&req)?;
        let dir = self.multipart_dir(&req.input.upload_id)?;
        check_owner(&dir, &s, &req.input.key).await?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let s = self.session(&req)?;
        let path = self.object_path(&s, &req.input.bucket, &req.input.key)?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|_| s3_error!(NoSuchKey))?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(meta.len() as i64),
            last_modified: meta.modified().ok().map(Timestamp::from),
            ..Default::default()
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.session(&req)?;
        if req.input.bucket != BUCKET {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.session(&req)?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let s = self.session(&req)?;
        if req.input.bucket != BUCKET {
            return Err(s3_error!(NoSuchBucket));
        }
        let own = format!("sources/{}/", s.asset_id);
        let prefix = req.input.prefix.clone().unwrap_or_default();
        if !prefix.starts_with(&own) && !own.starts_with(&prefix) {
            return Err(s3_error!(AccessDenied, "list under {own}"));
        }
        let dir = self.state.layout.sources(s.asset_id);
        let mut contents = Vec::new();
        for f in crate::util::list_files(&dir) {
            let rel = f
                .strip_prefix(&dir)
                .unwrap_or(&f)
                .to_string_lossy()
                .replace('\\', "/");
            let key = format!("{own}{rel}");
            if !key.starts_with(&prefix) || rel.split('/').any(|p| p.starts_with(".upload-")) {
                continue;
            }
            let meta = std::fs::metadata(&f).ok();
            contents.push(Object {
                key: Some(key),
                size: meta.as_ref().map(|m| m.len() as i64),
                last_modified: meta.and_then(|m| m.modified().ok()).map(Timestamp::from),
                ..Default::default()
            });
        }
        let max = req.input.max_keys.unwrap_or(1000).clamp(1, 1000) as usize;
        let truncated = contents.len() > max;
        contents.truncate(max);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(BUCKET.into()),
            prefix: Some(prefix),
            key_count: Some(contents.len() as i32),
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            contents: Some(contents),
            ..Default::default()
        }))
    }
}

/// The multipart upload must belong to these credentials and this key.
async fn check_owner(dir: &std::path::Path, s: &UploadSession, key: &str) -> S3Result<()> {
    let meta = tokio::fs::read_to_string(dir.join("key"))
        .await
        .map_err(|_| s3_error!(NoSuchUpload))?;
    // Line 1: the access key that started it (a later uploadLocation of the same asset
    // may finish it); line 2: the key.
    let k = meta.lines().nth(1).unwrap_or("");
    if k != key || !k.starts_with(&format!("sources/{}/", s.asset_id)) {
        return Err(s3_error!(NoSuchUpload));
    }
    Ok(())
}

/// The S3 endpoint as a tower service for the router.
pub fn service(
    state: Arc<AppState>,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
       + Send
       + Sync
       + 'static {
    let mut b = S3ServiceBuilder::new(Uploads {
        state: state.clone(),
    });
    b.set_auth(Keys { state });
    b.set_validation(OurBucket);
    let svc = b.build();
    tower::service_fn(move |req: Request<Body>| {
        let svc = svc.clone();
        async move {
            let req = req.map(s3s::Body::http_body_unsync);
            let resp = match svc.call(req).await {
                Ok(r) => r.map(Body::new),
                Err(e) => {
                    let mut r = Response::new(Body::from(format!("{e:?}")));
                    *r.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    r
                }
            };
            Ok::<_, Infallible>(resp)
        }
    })
}
