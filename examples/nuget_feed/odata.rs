//! The NuGet v2 OData endpoints NuGet 2.8 uses: the service document, `$metadata`,
//! `Packages`, `Search()` and `FindPackagesById()`, as Atom feeds.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::http::StatusCode;
use quick_xml::escape::escape;

use crate::packages::{Feed, PackageMeta, version_key};

const ATOM: &str = "application/atom+xml;type=feed;charset=utf-8";
const XML: &str = "application/xml;charset=utf-8";

/// Answers a read of `rest` (the path after `/api/v2/`) with `query`.
pub fn answer(
    feed: &Feed,
    base: &str,
    rest: &str,
    query: &str,
) -> Result<(&'static str, String), StatusCode> {
    let params = parse_query(query);
    let (resource, count) = match rest.strip_suffix("/$count") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    if resource.is_empty() {
        return Ok((XML, service_document(base)));
    }
    if resource == "$metadata" {
        return Ok((XML, METADATA.to_owned()));
    }
    let all = feed.all();
    let mut selected: Vec<Entry<'_>> = latest_flags(&all);
    match resource {
        "Packages" | "Packages()" => {}
        "Search" | "Search()" => {
            let term = unquote(params.get("searchTerm").map_or("", String::as_str)).to_lowercase();
            let prerelease = params.get("includePrerelease").is_some_and(|v| v == "true");
            selected.retain(|e| {
                e.meta.listed
                    && (prerelease || !e.prerelease)
                    && (term.is_empty()
                        || e.meta.id.to_lowercase().contains(&term)
                        || e.meta.description.to_lowercase().contains(&term))
            });
        }
        "FindPackagesById" | "FindPackagesById()" => {
            let id = unquote(params.get("id").map_or("", String::as_str));
            selected.retain(|e| e.meta.id.eq_ignore_ascii_case(id));
        }
        other => {
            // Packages(Id='X',Version='1.0.0')
            let key = other
                .strip_prefix("Packages(")
                .and_then(|k| k.strip_suffix(')'))
                .ok_or(StatusCode::NOT_FOUND)?;
            let fields = parse_key(key);
            let (id, version) = (
                fields.get("Id").ok_or(StatusCode::NOT_FOUND)?,
                fields.get("Version").ok_or(StatusCode::NOT_FOUND)?,
            );
            let entry = selected
                .into_iter()
                .find(|e| {
                    e.meta.id.eq_ignore_ascii_case(id)
                        && e.meta.version.eq_ignore_ascii_case(version)
                })
                .ok_or(StatusCode::NOT_FOUND)?;
            let mut body = String::from(r#"<?xml version="1.0" encoding="utf-8"?>"#);
            write_entry(&mut body, base, &entry, true);
            return Ok(("application/atom+xml;type=entry;charset=utf-8", body));
        }
    }
    if let Some(filter) = params.get("$filter") {
        apply_filter(&mut selected, filter);
    }
    if count {
        return Ok(("text/plain;charset=utf-8", selected.len().to_string()));
    }
    let skip = params
        .get("$skip")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let top = params
        .get("$top")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100usize);
    let page: Vec<Entry<'_>> = selected.into_iter().skip(skip).take(top.min(100)).collect();
    Ok((ATOM, feed_document(base, &page)))
}

/// What a read shows, and so what the caller must be allowed to read.
#[derive(Debug, PartialEq, Eq)]
pub enum Reads {
    /// The service document or `$metadata`: the same for every feed, no package in it.
    Service,
    /// One package: `FindPackagesById()?id='X'` and `Packages(Id='X',Version='Y')`.
    Package(String),
    /// The feed's listing: `Packages()`, `Search()`, anything else.
    Feed,
}

/// What a read of `rest` (the path after `/api/v2/`) with `query` shows.
pub fn reads(rest: &str, query: &str) -> Reads {
    let resource = rest.strip_suffix("/$count").unwrap_or(rest);
    let id = match resource {
        "" | "$metadata" => return Reads::Service,
        "FindPackagesById" | "FindPackagesById()" => parse_query(query)
            .get("id")
            .map(|id| unquote(id).to_owned()),
        other => other
            .strip_prefix("Packages(")
            .and_then(|k| k.strip_suffix(')'))
            .and_then(|key| parse_key(key).remove("Id")),
    };
    match id {
        Some(id) if !id.is_empty() => Reads::Package(id),
        _ => Reads::Feed,
    }
}

/// A package with the flags the feed computes.
struct Entry<'a> {
    meta: &'a PackageMeta,
    prerelease: bool,
    latest: bool,
    absolute_latest: bool,
}

/// Marks each id's latest listed release and latest listed version.
fn latest_flags(all: &[PackageMeta]) -> Vec<Entry<'_>> {
    let mut latest: HashMap<String, &PackageMeta> = HashMap::new();
    let mut absolute: HashMap<String, &PackageMeta> = HashMap::new();
    for meta in all.iter().filter(|m| m.listed) {
        let id = meta.id.to_ascii_lowercase();
        let newer =
            |current: &&PackageMeta| version_key(&meta.version) > version_key(&current.version);
        if absolute.get(&id).is_none_or(newer) {
            absolute.insert(id.clone(), meta);
        }
        if !meta.version.contains('-') && latest.get(&id).is_none_or(newer) {
            latest.insert(id, meta);
        }
    }
    all.iter()
        .map(|meta| {
            let id = meta.id.to_ascii_lowercase();
            Entry {
                meta,
                prerelease: meta.version.contains('-'),
                latest: latest.get(&id).is_some_and(|m| std::ptr::eq(*m, meta)),
                absolute_latest: absolute.get(&id).is_some_and(|m| std::ptr::eq(*m, meta)),
            }
        })
        .collect()
}

/// The subset of `$filter` NuGet 2.8 sends: `IsLatestVersion`, `IsAbsoluteLatestVersion`,
/// `Id eq '…'` (or `tolower(Id) eq '…'`) and `Version eq '…'`, joined by `and`.
fn apply_filter(entries: &mut Vec<Entry<'_>>, filter: &str) {
    for clause in filter.split(" and ") {
        let clause = clause.trim().trim_matches(['(', ')']);
        let lower = clause.to_ascii_lowercase();
        if lower == "islatestversion" {
            entries.retain(|e| e.latest);
        } else if lower == "isabsolutelatestversion" {
            entries.retain(|e| e.absolute_latest);
        } else if let Some((field, value)) = clause.split_once(" eq ") {
            let value = unquote(value.trim());
            let field = field.trim().to_ascii_lowercase();
            if field.ends_with("id") || field.ends_with("id)") {
                entries.retain(|e| e.meta.id.eq_ignore_ascii_case(value));
            } else if field.contains("version") {
                entries.retain(|e| e.meta.version.eq_ignore_ascii_case(value));
            }
        }
    }
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(value)
}

/// `Id='X',Version='1.0'` → {Id: X, Version: 1.0}.
fn parse_key(key: &str) -> HashMap<String, String> {
    key.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), percent_decode(unquote(v.trim()))))
        .collect()
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                match std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => out.push(v),
                    None => {
                        out.push(b'%');
                        out.extend(hex);
                    }
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn service_document(base: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><service xml:base="{}/" xmlns="http://www.w3.org/2007/app" xmlns:atom="http://www.w3.org/2005/Atom"><workspace><atom:title>Default</atom:title><collection href="Packages"><atom:title>Packages</atom:title></collection></workspace></service>"#,
        escape(base)
    )
}

fn feed_document(base: &str, entries: &[Entry<'_>]) -> String {
    let now = now();
    let mut out = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xml:base="{b}/" xmlns="http://www.w3.org/2005/Atom" xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"><id>{b}/Packages</id><title type="text">Packages</title><updated>{now}</updated><link rel="self" title="Packages" href="Packages" />"#,
        b = escape(base)
    );
    for entry in entries {
        write_entry(&mut out, base, entry, false);
    }
    out.push_str("</feed>");
    out
}

fn write_entry(out: &mut String, base: &str, e: &Entry<'_>, standalone: bool) {
    let m = e.meta;
    let (id, version) = (escape(&m.id), escape(&m.version));
    let b = escape(base);
    let namespaces = if standalone {
        format!(
            r#" xml:base="{b}/" xmlns="http://www.w3.org/2005/Atom" xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata""#
        )
    } else {
        String::new()
    };
    // NuGet 2.x treats a package published in 1900 as unlisted.
    let published = if m.listed {
        m.published.trim_end_matches('Z').to_owned()
    } else {
        "1900-01-01T00:00:00".to_owned()
    };
    let _ = write!(
        out,
        r#"<entry{namespaces}><id>{b}/Packages(Id='{id}',Version='{version}')</id><category term="NuGetGallery.V2FeedPackage" scheme="http://schemas.microsoft.com/ado/2007/08/dataservices/scheme" /><link rel="edit" title="V2FeedPackage" href="Packages(Id='{id}',Version='{version}')" /><title type="text">{id}</title><summary type="text">{desc}</summary><updated>{updated}</updated><author><name>{authors}</name></author><link rel="edit-media" title="V2FeedPackage" href="Packages(Id='{id}',Version='{version}')/$value" /><content type="application/zip" src="{b}/package/{id}/{version}" /><m:properties><d:Version>{version}</d:Version><d:NormalizedVersion>{version}</d:NormalizedVersion><d:Authors>{authors}</d:Authors><d:Description>{desc}</d:Description><d:DownloadCount m:type="Edm.Int32">0</d:DownloadCount><d:IsLatestVersion m:type="Edm.Boolean">{latest}</d:IsLatestVersion><d:IsAbsoluteLatestVersion m:type="Edm.Boolean">{abs}</d:IsAbsoluteLatestVersion><d:IsPrerelease m:type="Edm.Boolean">{pre}</d:IsPrerelease><d:Listed m:type="Edm.Boolean">{listed}</d:Listed><d:Published m:type="Edm.DateTime">{published}</d:Published><d:PackageHash>{hash}</d:PackageHash><d:PackageHashAlgorithm>SHA512</d:PackageHashAlgorithm><d:PackageSize m:type="Edm.Int64">{size}</d:PackageSize><d:RequireLicenseAcceptance m:type="Edm.Boolean">false</d:RequireLicenseAcceptance><d:Dependencies></d:Dependencies></m:properties></entry>"#,
        desc = escape(&m.description),
        authors = escape(&m.authors),
        updated = escape(&m.published),
        latest = e.latest,
        abs = e.absolute_latest,
        pre = e.prerelease,
        listed = m.listed,
        hash = escape(&m.hash),
        size = m.size,
    );
}

fn now() -> String {
    feedkey::time::OffsetDateTime::now_utc()
        .format(&feedkey::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

const METADATA: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx">
  <edmx:DataServices xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" m:DataServiceVersion="2.0">
    <Schema Namespace="NuGetGallery" xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" xmlns="http://schemas.microsoft.com/ado/2006/04/edm">
      <EntityType Name="V2FeedPackage" m:HasStream="true">
        <Key><PropertyRef Name="Id" /><PropertyRef Name="Version" /></Key>
        <Property Name="Id" Type="Edm.String" Nullable="false" m:FC_TargetPath="SyndicationTitle" m:FC_ContentKind="text" m:FC_KeepInContent="false" />
        <Property Name="Version" Type="Edm.String" Nullable="false" />
        <Property Name="NormalizedVersion" Type="Edm.String" Nullable="true" />
        <Property Name="Authors" Type="Edm.String" Nullable="true" m:FC_TargetPath="SyndicationAuthorName" m:FC_ContentKind="text" m:FC_KeepInContent="true" />
        <Property Name="Description" Type="Edm.String" Nullable="true" />
        <Property Name="DownloadCount" Type="Edm.Int32" Nullable="false" />
        <Property Name="IsLatestVersion" Type="Edm.Boolean" Nullable="false" />
        <Property Name="IsAbsoluteLatestVersion" Type="Edm.Boolean" Nullable="false" />
        <Property Name="IsPrerelease" Type="Edm.Boolean" Nullable="false" />
        <Property Name="Listed" Type="Edm.Boolean" Nullable="false" />
        <Property Name="Published" Type="Edm.DateTime" Nullable="false" />
        <Property Name="PackageHash" Type="Edm.String" Nullable="true" />
        <Property Name="PackageHashAlgorithm" Type="Edm.String" Nullable="true" />
        <Property Name="PackageSize" Type="Edm.Int64" Nullable="false" />
        <Property Name="RequireLicenseAcceptance" Type="Edm.Boolean" Nullable="false" />
        <Property Name="Dependencies" Type="Edm.String" Nullable="true" />
      </EntityType>
      <EntityContainer Name="FeedContext_x0060_1" m:IsDefaultEntityContainer="true">
        <EntitySet Name="Packages" EntityType="NuGetGallery.V2FeedPackage" />
        <FunctionImport Name="Search" EntitySet="Packages" ReturnType="Collection(NuGetGallery.V2FeedPackage)" m:HttpMethod="GET">
          <Parameter Name="searchTerm" Type="Edm.String" FixedLength="false" Unicode="false" />
          <Parameter Name="targetFramework" Type="Edm.String" FixedLength="false" Unicode="false" />
          <Parameter Name="includePrerelease" Type="Edm.Boolean" Nullable="false" />
        </FunctionImport>
        <FunctionImport Name="FindPackagesById" EntitySet="Packages" ReturnType="Collection(NuGetGallery.V2FeedPackage)" m:HttpMethod="GET">
          <Parameter Name="id" Type="Edm.String" FixedLength="false" Unicode="false" />
        </FunctionImport>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>"#;

#[cfg(test)]
mod tests {
    use super::{Reads, reads};

    #[test]
    fn a_read_shows_the_service_one_package_or_the_feed() {
        let package = |id: &str| Reads::Package(id.to_owned());
        for (rest, query, expected) in [
            (
                "FindPackagesById()",
                "id='Contoso.Service.Core'",
                package("Contoso.Service.Core"),
            ),
            ("FindPackagesById", "id=%27A.B%27&$skip=0", package("A.B")),
            ("FindPackagesById()/$count", "id='A.B'", package("A.B")),
            ("Packages(Id='A.B',Version='1.0.0')", "", package("A.B")),
            ("FindPackagesById()", "", Reads::Feed),
            ("FindPackagesById()", "id=''", Reads::Feed),
            ("Packages(Version='1.0.0')", "", Reads::Feed),
            ("Packages()", "$filter=IsLatestVersion", Reads::Feed),
            ("Packages", "", Reads::Feed),
            ("Search()", "searchTerm='Contoso'", Reads::Feed),
            ("", "", Reads::Service),
            ("$metadata", "", Reads::Service),
        ] {
            assert_eq!(reads(rest, query), expected, "{rest}?{query}");
        }
    }
}
