//! Artifact resolution and the local, content-addressed cache.
