/* db_h5store.h - the HDF5 feature store: a db_history in one file, for fast reloads and for
 * analysts (h5py, h5dump).  Layout (format version 1, see docs/import.md):
 *   /                 attributes format_version, day0, period_days, n_products, n_periods,
 *                     n_competitors (int32), source, writer (strings)
 *   /products/        product_id, name (UTF-8 strings [P]), name_is_null (uint8 [P]),
 *                     base_price, unit_cost, min_price, max_price, max_change_pct (float64 [P])
 *   /sales/           price, units, revenue, traffic (float32 [P][T]), promo, present (uint8 [P][T])
 *   /competitors/     names (strings [C]), offset (int64 [P*T+1]), id (int32 [N]), price (float32 [N])
 * Numeric datasets are chunked and gzip-compressed (with byte shuffle); values, NaN
 * payloads included, round-trip bit for bit.  Files are written to a temp name and moved
 * into place (eng_atomic_commit), so a reader never sees half a file. */
#ifndef DB_H5STORE_H
#define DB_H5STORE_H

#include <stdint.h>

#include "db_history.h"

#define DB_H5_FORMAT_VERSION 1

/* Save h to path (atomically).  source is recorded as an attribute (NULL = "rlprice").
 * Returns 0, ENG_EINVAL (inconsistent history), ENG_EIO (HDF5 or file-system failure; the
 * old file, if any, is untouched) or ENG_ENOMEM.  Nothing to free. */
int db_history_save_h5(const db_history *h, const char *path);
int db_history_save_h5_source(const db_history *h, const char *path, const char *source);

/* Load path into a new history (*out, caller frees with db_history_free; NULL on failure).
 * Returns 0, ENG_ENOTFOUND (no such file), ENG_EFORMAT (not HDF5, corrupt, truncated,
 * inconsistent, or another format version; the message says which) or ENG_ENOMEM.
 * The HDF5 library's own error printing is silenced while this runs. */
int db_history_load_h5(db_history **out, const char *path);

typedef struct db_h5_info {
    int format_version, n_products, n_periods, n_competitors, period_days;
    int32_t day0;
    int64_t n_comp_prices;
    char source[256];
} db_h5_info;

/* Read only the attributes and sizes of a store.  Same status codes as the loader. */
int db_h5store_info(const char *path, db_h5_info *info);

#endif
