from common import *
from sklearn.linear_model import LogisticRegression
from sklearn.feature_extraction.text import TfidfVectorizer
import warnings; warnings.filterwarnings('ignore')
C=77
tex=[l.rstrip('\n') for l in open('ex.txt')]; tdev=[l.rstrip('\n') for l in open('dev.txt')]
desc=[l.rstrip('\n') for l in open('desc.txt')]
def ev(P): return (P.argmax(1)==ydev).mean()*100
vec=TfidfVectorizer(analyzer='char_wb',ngram_range=(2,5),sublinear_tf=True)
Xt=vec.fit_transform(tex); Xdv=vec.transform(tdev)
lt=LogisticRegression(C=30,max_iter=3000).fit(Xt,ytr); Pt=lt.predict_proba(Xdv)
mean=exq[:,12,:].mean(0)
E=nrm(exq[:,12,:]-mean); Ed=nrm(devq[:,12,:]-mean)
for Cr in [10,30,100]:
    le=LogisticRegression(C=Cr,max_iter=3000).fit(E,ytr); Pe=le.predict_proba(Ed)
    for w in [0,0.2,0.3,0.4,0.5]:
        print(Cr,w,'prob-avg',f'{ev((1-w)*Pe+w*Pt):.2f}','logp-avg',f'{ev((1-w)*np.log(Pe)+w*np.log(Pt)):.2f}')
# concatenated features: embedding + tfidf into one LR
from scipy.sparse import hstack, csr_matrix
for a in [0.5,1,2]:
    F=hstack([csr_matrix(E*a),Xt]).tocsr(); Fd=hstack([csr_matrix(Ed*a),Xdv]).tocsr()
    for Cr in [10,30,100]:
        m=LogisticRegression(C=Cr,max_iter=3000).fit(F,ytr); print('concat',a,Cr,f'{ev(m.predict_proba(Fd)):.2f}')
