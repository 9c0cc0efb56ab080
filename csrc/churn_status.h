/* Status codes returned by the compiled kernel (never exceptions in nogil code). */
#ifndef CHURN_STATUS_H
#define CHURN_STATUS_H

#define CHURN_OK 0
#define CHURN_ERR_NOMEM 1
#define CHURN_ERR_OVERFLOW 2      /* an integer money sum left the int64 range */
#define CHURN_ERR_TOO_MANY 3      /* a partition of more than 2^31 - 1 rows */
#define CHURN_ERR_BAD_CODE 4      /* a dense code outside [0, n_codes) */
#define CHURN_ERR_BAD_STRING 5    /* string offsets or views outside their buffers */

#endif
