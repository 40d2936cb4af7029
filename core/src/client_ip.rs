//! TODO(stub): being written.
