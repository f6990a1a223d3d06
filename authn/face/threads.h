#ifdef __cplusplus
extern "C" {
#endif
void trustid_cv_set_num_threads(int n);
int trustid_cv_get_num_threads(void);
#ifdef __cplusplus
}
#endif
